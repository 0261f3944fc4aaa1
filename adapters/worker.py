"""``python -m adapters.worker RUN_DIR``: train the run described by ``RUN_DIR/job.json``.

Events go to ``RUN_DIR/events.jsonl``, one JSON object a line, flushed as they happen; logs go
to stderr (the parent sends them to ``RUN_DIR/worker.log``). SIGTERM or SIGINT asks for a clean
stop: the current step finishes, a checkpoint is written, and the worker exits with
``EXIT_CANCELLED``. The exit code is the outcome:

    0 done · 1 crashed (see the log) · 2 bad invocation · 3 cancelled · 4 a problem the user can fix (message in the last event)
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path

EXIT_DONE, EXIT_CRASHED, EXIT_USAGE, EXIT_CANCELLED, EXIT_INVALID = 0, 1, 2, 3, 4


class EventWriter:
    def __init__(self, path: Path):
        self._file = path.open("a", encoding="utf-8")

    def __call__(self, event: dict) -> None:
        event = {"time": round(time.time(), 3), **event}
        self._file.write(json.dumps(event, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not (Path(argv[0]) / "job.json").is_file():
        print("usage: python -m adapters.worker RUN_DIR (a folder with job.json)", file=sys.stderr)
        return EXIT_USAGE
    run_dir = Path(argv[0])
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

    stop = {"requested": False}

    def request_stop(signum, _frame) -> None:
        logging.getLogger(__name__).info("signal %d: stopping after this step", signum)
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    emit = EventWriter(run_dir / "events.jsonl")
    try:
        from adapters.job import TrainJob
        from adapters import training
        from store.errors import DomainsmithError

        job = TrainJob.load(run_dir)
        try:
            outcome = training.train(job, run_dir, emit, lambda: stop["requested"])
        except DomainsmithError as exc:
            emit({"type": "error", "message": str(exc), "user_error": True})
            return EXIT_INVALID
        return EXIT_DONE if outcome == "done" else EXIT_CANCELLED
    except MemoryError:
        emit({"type": "error", "message": "the machine ran out of memory during training"})
        return EXIT_CRASHED
    except Exception as exc:  # the crash is reported to the parent, with the traceback in the log
        traceback.print_exc()
        emit({"type": "error", "message": f"training crashed: {type(exc).__name__}: {exc}"})
        return EXIT_CRASHED
    finally:
        emit.close()


if __name__ == "__main__":
    sys.exit(main())
