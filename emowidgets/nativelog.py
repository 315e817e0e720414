"""Native start-up chatter -> Python logging, so a notebook shows no red stderr lines a teacher reads as errors.

MediaPipe's C++ core (absl logging), LiteRT and TFLite print INFO/WARNING lines straight to file descriptor 2
when a detector is created, meets its first unaligned input tensor (once per process, at a random call) and is
closed ("Created TensorFlow Lite XNNPACK delegate
for CPU", "Sparsity tensors may not yet be fully supported", ...); no API turns all of them off. Around those
calls :func:`native_stderr_to_logging` points descriptor 2 at a temporary file and re-logs what was written
under the ``emowidgets.native`` logger: errors at ERROR, the rest at DEBUG.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

log = logging.getLogger("emowidgets.native")
# absl "E0000 00:00:..."/"F0000 ..." lines and LiteRT/TFLite "ERROR: ..." lines.
_ERROR_LINE = re.compile(r"^(?:[EF]\d{4} |ERROR: )")
_lock = threading.RLock()  # descriptor 2 is process-wide: one redirection at a time


@contextlib.contextmanager
def native_stderr_to_logging() -> Iterator[list[str]]:
    """Re-log what native code writes to descriptor 2 meanwhile (other threads' writes too, so keep it short).

    Yields a list that holds the captured lines once the block has ended.
    """
    lines: list[str] = []
    with _lock, tempfile.TemporaryFile() as capture:
        with contextlib.suppress(Exception):  # an OutStream (Jupyter) or closed stream: nothing to flush
            sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines += [line for line in capture.read().decode(errors="replace").splitlines() if line.strip()]
            for line in lines:
                log.log(logging.ERROR if _ERROR_LINE.match(line) else logging.DEBUG, "%s", line)
