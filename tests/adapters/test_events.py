"""Training events: written and read by the same code (adapters.events), old lines without a version
still read, and the parent's view of them (ProgressEvent)."""

from __future__ import annotations

import json

from adapters import events as ev
from adapters.run_folder import RunFolder

ONE_OF_EACH = [
    ev.Status(message="loading the base model"),
    ev.Resumed(step=4, checkpoint="step-000004"),
    ev.Start(
        total_steps=24,
        start_step=4,
        method="lora",
        train_examples=22,
        val_examples=2,
        trainable_params=1234,
        val_loss=4.2,
        lora_targets=["down_proj", "q_proj"],
    ),
    ev.Step(
        step=5,
        total_steps=24,
        epoch=0.833,
        loss=3.5,
        lr=1e-3,
        tokens=310,
        tokens_per_s=120.5,
        eta_s=40.0,
        batch=[3, 7, 1, 0],
    ),
    ev.Eval(step=6, epoch=1, val_loss=3.1, perplexity=22.198),
    ev.Checkpoint(step=6, path="step-000006"),
    ev.Cancelled(step=7),
    ev.Done(step=24, metrics={"val_loss_before": 4.2, "val_loss_after": 1.0}),
    ev.Error(message="too few examples", user_error=True),
]


def test_every_event_round_trips_through_the_file(tmp_path):
    path = RunFolder(tmp_path).events
    write = ev.EventWriter(path)
    for event in ONE_OF_EACH:
        write(event)
    write.close()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["type"] for line in lines] == [
        "status",
        "resumed",
        "start",
        "step",
        "eval",
        "checkpoint",
        "cancelled",
        "done",
        "error",
    ]
    assert all(line["version"] == ev.FORMAT_VERSION and line["time"] > 0 for line in lines)
    assert list(lines[3]) == [
        "time",
        "type",
        "version",
        "step",
        "total_steps",
        "epoch",
        "loss",
        "lr",
        "tokens",
        "tokens_per_s",
        "eta_s",
        "batch",
    ]
    read = ev.read_events(path)
    assert [type(e) for e in read] == [type(e) for e in ONE_OF_EACH]
    assert [e.to_json() | {"time": None} for e in read] == [e.to_json() | {"time": None} for e in ONE_OF_EACH]


def test_lines_written_before_events_had_a_version_still_read(tmp_path):
    """Exactly what earlier versions wrote: no version key; a line cut by a kill; a type from the future."""
    path = RunFolder(tmp_path).events
    path.write_text(
        "\n".join(
            [
                '{"time": 1733030000.1, "type": "start", "total_steps": 12, "start_step": 0, "method": "lora", '
                '"train_examples": 22, "val_examples": 2, "trainable_params": 4096, "val_loss": null, '
                '"lora_targets": ["q_proj"]}',
                '{"time": 1733030001.2, "type": "step", "step": 1, "total_steps": 12, "epoch": 0.167, "loss": 4.83, '
                '"lr": 0.001, "tokens": 300, "tokens_per_s": 150.2, "eta_s": 22.0, "batch": [4, 9, 1, 17]}',
                '{"time": 1733030002.0, "type": "error", "message": "bad data", "user_error": true}',
                '{"time": 1733030003.0, "type": "telemetry", "cpu": 0.5}',
                '{"time": 1733030004.0, "type": "step", "st',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    start, step, error = ev.read_events(path)
    assert isinstance(start, ev.Start) and start.version == 0 and start.val_loss is None
    assert start.lora_targets == ["q_proj"] and start.total_steps == 12
    assert isinstance(step, ev.Step) and step.version == 0
    assert (step.step, step.loss, step.batch, step.time) == (1, 4.83, [4, 9, 1, 17], 1733030001.2)
    assert isinstance(error, ev.Error) and error.user_error and error.message == "bad data"
    assert ev.Event.from_json({"type": "step", "step": 2, "added_later": True}).step == 2  # unknown keys ignored


def test_the_tail_returns_complete_lines_once(tmp_path):
    path = RunFolder(tmp_path).events
    path.write_text(json.dumps(ev.Status(message="an earlier attempt").to_json()) + "\n", encoding="utf-8")
    tail = ev.EventTail(path)  # starts at the end: an earlier attempt's events are not new
    line = json.dumps(ev.Step(step=1, loss=2.0).to_json()) + "\n"
    with path.open("a", encoding="utf-8") as f:
        f.write(line[:20])
    assert tail.read_new() == []
    with path.open("a", encoding="utf-8") as f:
        f.write(line[20:])
    [step] = tail.read_new()
    assert step == ev.Step(step=1, loss=2.0)
    assert tail.read_new() == []


def test_progress_events_carry_the_worker_event():
    step = ev.ProgressEvent.from_event("r1", ev.Step(step=3, total_steps=9, loss=1.5, tokens_per_s=80.0, eta_s=6.0))
    assert (step.kind, step.run_id, step.step, step.total_steps, step.loss) == ("step", "r1", 3, 9, 1.5)
    assert step.data["batch"] == [] and isinstance(step.event, ev.Step)
    start = ev.ProgressEvent.from_event("r1", ev.Start(total_steps=9, start_step=4, val_loss=3.0))
    assert (start.total_steps, start.start_step, start.val_loss) == (9, 4, 3.0)
    failed = ev.ProgressEvent.from_event("r1", ev.Error(message="training crashed: boom"))
    assert failed.kind == "failed" and failed.message == "training crashed: boom" and failed.kind in ev.TERMINAL
