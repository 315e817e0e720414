"""Child process of ``test_close.py``: close a pipeline while threads are inside ``process_*``, many rounds.

A crash (the segfault of issue 26: MediaPipe's detector released under a running ``detect``) kills this process,
so the test reads its exit status. Prints ``ok ROUNDS CLOSED_ERRORS RESULTS`` on success.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from pathlib import Path

import simplejpeg

from emowidgets.detect import FaceDetector
from emowidgets.errors import ClosedError
from emowidgets.infer import EmotionClassifier
from emowidgets.pipeline import Pipeline, PipelineOptions, PipelineState


def main(photo: str, rounds: int) -> None:
    jpeg = Path(photo).read_bytes()
    rgb = simplejpeg.decode_jpeg(jpeg)
    options = PipelineOptions()
    classifier = EmotionClassifier.create_from_options(options.classifier)  # loaded once; a detector per round
    rng = random.Random(0)
    refused = results = 0
    lock = threading.Lock()
    for r in range(rounds):
        p = Pipeline(FaceDetector.create_from_options(options.detector), classifier, options)
        p.start()

        def hammer(call) -> None:
            nonlocal refused, results
            while True:
                try:
                    call()
                except ClosedError:
                    with lock:
                        refused += 1
                    return
                with lock:
                    results += 1

        calls = [lambda p=p: p.process_array(rgb), lambda p=p: p.process_bytes(jpeg),
                 lambda p=p: p.process_image(jpeg), lambda p=p, r=r: p.submit(jpeg, r, 0)]
        workers = [threading.Thread(target=hammer, args=(c,)) for c in calls]
        for w in workers:
            w.start()
        time.sleep(rng.uniform(0.0, 0.03))  # lands anywhere: decoding, detecting, classifying, between calls
        closer = threading.Thread(target=p.close) if r % 2 else None  # from another thread, or this one
        if closer is None:
            p.close()
        else:
            closer.start()
            closer.join()
        for w in workers:
            w.join(30)
            assert not w.is_alive(), "a process_* call hung after close"
        assert p.state is PipelineState.CLOSED
    print("ok", rounds, refused, results)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
