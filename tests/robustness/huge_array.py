"""Child process of ``test_bad_inputs.py``: how much memory a pipeline uses to refuse huge arrays.

For each array (10000 x 10000 float32, uint16, and float32 in a shape no frame has), filled so its pages are
real, hands it to ``process_array`` and measures the call's peak RSS rise (``ru_maxrss``, this process only) and
its peak of traced allocations (``tracemalloc``: numpy reports its buffers there). Prints one JSON object:
``{name: {"error": message, "rss_mb": rise, "traced_mb": peak}}``.
"""

from __future__ import annotations

import json
import resource
import tracemalloc

import numpy as np

from emowidgets.errors import FrameError
from emowidgets.pipeline import Pipeline


def main() -> None:
    seen = {}
    with Pipeline.create_from_options(warmup=False) as pipeline:
        for name, shape, dtype in (("float32", (10000, 10000), np.float32), ("uint16", (10000, 10000), np.uint16),
                                   ("float32 4-D", (10000, 10000, 1, 1), np.float32)):
            huge = np.full(shape, 0.5 if dtype == np.float32 else 30000, dtype)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            tracemalloc.start()
            try:
                pipeline.process_array(huge)
                error = ""
            except FrameError as exc:
                error = str(exc)
            traced = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rise = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
            seen[name] = {"error": error, "rss_mb": round(rise / 1024, 1), "traced_mb": round(traced / 2**20, 1)}
            del huge
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
