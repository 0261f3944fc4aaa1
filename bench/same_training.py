"""Would today's defaults train exactly what a recorded run trained? (A training run is an hour here.)

Prepares a run from the same rows with today's defaults (``adapters.service.prepare``: the grounded
rendering, the split, the preset, the method), compares its training and validation examples and
hyperparameters with those of a recorded run in the same home, prints the comparison, and removes
the run it prepared. When both match, the recorded run's trained model is what the defaults give
(up to floating-point order in training), and its measured figures stand for them.

    .venv/bin/python bench/same_training.py --home bench/out/loop/debian-policy/home \\
        --data bench/out/loop/debian-policy/generated.jsonl --grounded loop r20261202-114908-c88e

Exit status 0 when everything matches, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the recorded run's id")
    parser.add_argument("--home", type=Path, required=True, help="the data folder the run lives in")
    parser.add_argument("--data", required=True, help="the rows file (train --data)")
    parser.add_argument("--grounded", help="train --grounded KB")
    args = parser.parse_args(argv)

    from adapters import catalogue, datasets, service
    from store.knowledge_base import KnowledgeBase
    from store.settings import Settings

    settings = Settings.load(home=args.home, env={})
    recorded = catalogue.run_dir(settings, args.run)
    if not recorded.path.is_dir():
        raise SystemExit(f"no run {args.run} under {args.home}")
    request = service.TrainRequest(data=args.data, grounded=args.grounded)
    job, data = service.prepare(settings, request, lambda name: KnowledgeBase.open(settings, name, create=False))
    prepared = catalogue.run_dir(settings, job.run_id)
    try:
        same = True
        for part in ("train", "val"):
            now = [e["messages"] for e in datasets.read_examples(getattr(prepared, part))]
            then = [e["messages"] for e in datasets.read_examples(getattr(recorded, part))]
            same &= now == then
            print(f"{part}: {len(now)} examples today, {len(then)} in {args.run}, identical: {now == then}")
        now_job = json.loads((prepared.path / "job.json").read_text(encoding="utf-8"))
        then_job = json.loads((recorded.path / "job.json").read_text(encoding="utf-8"))
        for key in ("hyperparameters", "method", "seed", "base"):
            equal = now_job[key] == then_job[key]
            same &= equal
            print(f"{key}: identical: {equal}" + ("" if equal else f" (today {now_job[key]}, then {then_job[key]})"))
        for note in [*data.data_notes, data.grounding or ""]:
            if note:
                print(f"note: {note}")
        print(f"today's run source: {json.dumps(now_job['source'])}")
    finally:
        shutil.rmtree(prepared.path)
    print("the same training" if same else "different training")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
