"""``python -m emowidgets`` is the same as the ``emowidgets`` command."""

from emowidgets.tools.cli import main

raise SystemExit(main())
