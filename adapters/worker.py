"""``python -m adapters.worker RUN_DIR``: train the run described by ``RUN_DIR/job.json``.

Events (``adapters.events``) go to ``RUN_DIR/events.jsonl``, one JSON object a line, flushed as
they happen; logs go to stderr (the parent sends them to ``RUN_DIR/worker.log``). SIGTERM or
SIGINT asks for a clean stop: the current step finishes, a checkpoint is written, and the worker
exits with ``EXIT_CANCELLED``. The exit code is the outcome:

    0 done · 1 crashed (see the log) · 2 bad invocation · 3 cancelled ·
    4 a problem the user can fix (message in the last event)
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from pathlib import Path

from adapters.events import Error, EventWriter
from adapters.run_folder import RunFolder

EXIT_DONE, EXIT_CRASHED, EXIT_USAGE, EXIT_CANCELLED, EXIT_INVALID = 0, 1, 2, 3, 4


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not RunFolder(Path(argv[0])).exists():
        print("usage: python -m adapters.worker RUN_DIR (a folder with job.json)", file=sys.stderr)
        return EXIT_USAGE
    folder = RunFolder(Path(argv[0]))
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
    emit = EventWriter(folder.events)
    try:
        from adapters import training
        from adapters.job import TrainJob
        from store.errors import DomainsmithError

        job = TrainJob.load(folder)
        try:
            outcome = training.train(job, folder, emit, lambda: stop["requested"])
        except DomainsmithError as exc:
            emit(Error(message=str(exc), user_error=True))
            return EXIT_INVALID
        return EXIT_DONE if outcome == "done" else EXIT_CANCELLED
    except MemoryError:
        emit(Error(message="the machine ran out of memory during training"))
        return EXIT_CRASHED
    except Exception as exc:  # the crash is reported to the parent, with the traceback in the log
        traceback.print_exc()
        emit(Error(message=f"training crashed: {type(exc).__name__}: {exc}"))
        return EXIT_CRASHED
    finally:
        emit.close()


if __name__ == "__main__":
    sys.exit(main())
