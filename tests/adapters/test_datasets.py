"""Fine-tune inputs: Q&A files, knowledge-base examples, the split, the manifest, the registry."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from adapters import datasets
from adapters.base_model import describe
from adapters.hyperparameters import Hyperparameters, preset
from adapters.job import TrainJob
from adapters.run_folder import RunFolder
from store.errors import ConfigError, InvalidTrainingData, ModelNotFound
from tests import tiny_models
from tests.tiny_models import SMOLLM


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_question_answer_and_messages(tmp_path):
    rows = tiny_models.qa_rows(10)
    rows.append(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Seal?"},
                {"role": "assistant", "content": "Every 8,000 h."},
            ]
        }
    )
    report = datasets.load_file(write_jsonl(tmp_path / "qa.jsonl", rows))
    assert len(report.examples) == 11
    first = report.examples[0]
    assert first["kind"] == "chat" and first["origin"] == "qa.jsonl:1"
    assert first["messages"] == [
        {"role": "user", "content": "What colour is pump 1?"},
        {"role": "assistant", "content": "Pump 1 is blue."},
    ]
    assert report.examples[-1]["messages"][0]["role"] == "system"


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ('{"question": "Q?", "answer": "A."', "not valid JSON"),
        ('{"question": "Q?"}', 'missing "answer"'),
        ('{"question": "Q?", "answer": "   "}', "empty answer"),
        ('{"question": 3, "answer": "A"}', '"question" must be text'),
        ('["Q?", "A."]', "JSON object"),
        ('{"messages": [{"role": "user", "content": "Q?"}]}', "last message must be the assistant"),
        ('{"messages": [{"role": "robot", "content": "Q?"}, {"role": "assistant", "content": "A"}]}', "role 'robot'"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path, bad_line, reason):
    lines = [json.dumps(r) for r in tiny_models.qa_rows(12)]
    lines.insert(6, bad_line)
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InvalidTrainingData) as info:
        datasets.load_file(path)
    assert info.value.line == 7 and info.value.path == str(path)
    assert reason in str(info.value) and "qa.jsonl, line 7: " in str(info.value)


def test_bad_encoding_names_the_line(tmp_path):
    path = tmp_path / "qa.jsonl"
    body = "".join(json.dumps(r) + "\n" for r in tiny_models.qa_rows(12)).encode()
    path.write_bytes(body + '{"question": "Caf\u00e9?", "answer": "Oui."}\n'.encode("latin-1"))
    with pytest.raises(InvalidTrainingData, match="not UTF-8") as info:
        datasets.load_file(path)
    assert info.value.line == 13


def test_csv_rows_and_errors(tmp_path):
    path = tmp_path / "qa.csv"
    rows = tiny_models.qa_rows(11)
    text = "Question,Answer\n" + "".join(f'"{r["question"]}","{r["answer"]}"\n' for r in rows[:10])
    text += '"A question\nover two lines?","Yes."\n' + ',"no question"\n'
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidTrainingData, match="empty question") as info:
        datasets.load_file(path)
    assert info.value.line == 14  # header 1, ten rows 2-11, a two-line row 12-13, then the bad row
    path.write_text(text.rsplit(',"no question"', 1)[0], encoding="utf-8")
    assert len(datasets.load_file(path).examples) == 11
    (tmp_path / "cols.csv").write_text("q,a\nx,y\n", encoding="utf-8")
    with pytest.raises(InvalidTrainingData, match="no 'question' and no 'answer' column"):
        datasets.load_file(tmp_path / "cols.csv")


def test_duplicates_reported_and_dropped_and_minimum_stated(tmp_path):
    rows = tiny_models.qa_rows(10)
    rows.insert(3, dict(rows[0]))
    rows.append({"question": rows[1]["question"], "answer": "Something else."})
    report = datasets.load_file(write_jsonl(tmp_path / "qa.jsonl", rows))
    assert len(report.examples) == 11
    assert report.duplicates == [(4, 1)]
    assert report.conflicts == [(12, 2)]
    assert report.notes()[0] == "line 4: duplicate of line 1, dropped"
    with pytest.raises(InvalidTrainingData, match=f"too few examples: 5 usable, at least {datasets.MIN_EXAMPLES}"):
        datasets.load_file(write_jsonl(tmp_path / "few.jsonl", tiny_models.qa_rows(5)))
    with pytest.raises(InvalidTrainingData, match="unsupported training file type .txt"):
        (tmp_path / "qa.txt").write_text("hi")
        datasets.load_file(tmp_path / "qa.txt")


def test_split_holds_out_generated_questions_only_seeded_and_keeps_text_in_training():
    def chat(i: int, generated: bool) -> dict:
        messages = [
            {"role": "user", "content": f"{'g' if generated else 'e'}{i}"},
            {"role": "assistant", "content": "a"},
        ]
        return {"kind": "chat", "messages": messages, **({"generated": True} if generated else {})}

    expert = [chat(i, False) for i in range(12)]
    examples = expert + [chat(i, True) for i in range(30)] + [{"kind": "text", "text": "passage"}]
    train_a, val_a = datasets.split(examples, 0.1, seed=7)
    train_b, val_b = datasets.split(examples, 0.1, seed=7)
    _, val_c = datasets.split(examples, 0.1, seed=8)
    assert val_a == val_b and len(val_a) == 3 and len(train_a) == 40
    assert val_a != val_c
    assert all(e.get("generated") for e in val_a), "only generated questions are held out"
    assert all(e in train_a for e in expert), "every one of the expert's own rows trains"
    assert datasets.split(expert, 0.1, seed=7) == (expert, []), "the expert's facts are never withheld"
    assert datasets.data_hash(examples) == datasets.data_hash(examples)


def test_examples_from_knowledge_base(open_kb, tmp_path):
    from tests import factories

    doc = factories.make_markdown(tmp_path / "guide.md")
    kb = open_kb("guide")
    list(kb.add([doc]))
    examples = datasets.examples_from_kb(kb)
    texts = [e for e in examples if e["kind"] == "text"]
    qa = [e for e in examples if e["kind"] == "chat"]
    assert texts and qa
    assert len(texts) == kb.stats()["chunks"]
    assert qa[0]["messages"][0]["content"].startswith("What does ")
    assert qa[0]["messages"][1]["content"] in {t["text"] for t in texts}


def test_job_manifest_round_trip(tmp_path):
    job = TrainJob(
        run_id="r1",
        base="/m.gguf",
        method="lora",
        hyperparameters=preset("quick"),
        seed=3,
        source={"kind": "file", "path": "qa.jsonl"},
    )
    job.save(RunFolder(tmp_path))
    again = TrainJob.load(RunFolder(tmp_path))
    assert again == job and isinstance(again.hyperparameters, Hyperparameters)
    assert preset("standard", "qlora").learning_rate < preset("standard", "lora").learning_rate
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge")
    with pytest.raises(ConfigError, match="epochs must be at least 1"):
        preset("quick", epochs=0)


def test_base_model_checks(tmp_path):
    info = describe(None)
    assert info.architecture == "llama" and 100e6 < info.n_params < 200e6 and info.vocab_size == 49152
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(ModelNotFound, match="pickle checkpoints are refused"):
        describe(str(pickled))
    with pytest.raises(ModelNotFound, match="no base model at this path"):
        describe(str(tmp_path / "missing.gguf"))
    (tmp_path / "fake.gguf").write_bytes(b"not a gguf at all")
    with pytest.raises(ModelNotFound, match="not a GGUF file"):
        describe(str(tmp_path / "fake.gguf"))


def test_registry_add_list_resolve(settings, tmp_path):
    from store.registry import ModelRecord, open_registry, resolve_model

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    db, registry = open_registry(settings.db_path)
    try:
        registry.add(
            ModelRecord(
                name="pumps-q8_0",
                base="b.gguf",
                run_id="r1",
                data_hash="h",
                file=str(gguf),
                size_bytes=4,
                quant="q8_0",
                hyperparameters={"lora_r": 16},
                metrics={"x": 1.0},
            )
        )
        with pytest.raises(ModelNotFound, match="already registered"):
            registry.add(
                ModelRecord(name="pumps-q8_0", base="b", run_id="r", data_hash="h", file="f", size_bytes=1, quant="f16")
            )
        [record] = registry.list()
        assert record.hyperparameters == {"lora_r": 16} and record.created_at
    finally:
        db.close()
    assert resolve_model(settings.db_path, "pumps-q8_0") == gguf
    assert resolve_model(settings.db_path, str(gguf)) == gguf
    with pytest.raises(ModelNotFound, match="no model file or registered model"):
        resolve_model(settings.db_path, "nope")


def test_a_base_declares_its_learning_rate_qlora_keeps_its_own_and_an_explicit_rate_wins():
    from adapters.hyperparameters import QLORA_LEARNING_RATE

    assert preset("standard", "lora").learning_rate == 1e-3  # no rate declared: the preset's
    assert preset("standard", "lora", 3e-4).learning_rate == 3e-4
    assert preset("quick", "lora", 3e-4).learning_rate == 3e-4
    assert preset("standard", "qlora", 3e-4).learning_rate == QLORA_LEARNING_RATE
    assert preset("standard", "lora", 3e-4, learning_rate=5e-3).learning_rate == 5e-3
    assert preset("standard", "qlora", 3e-4, learning_rate=5e-3).learning_rate == 5e-3
    assert preset("standard", "lora", 3e-4, learning_rate=None).learning_rate == 3e-4  # a blank field


def test_the_default_training_base_trains_at_its_own_rate_and_smollm2_keeps_1e3(monkeypatch, tmp_path):
    """Where the base is resolved (``service.prepare_run``): the default base's rate, SmolLM2's 1e-3."""
    from adapters import service
    from adapters.hyperparameters import QLORA_LEARNING_RATE
    from store import model_catalogue as mc
    from store.settings import Settings

    monkeypatch.delenv("DOMAINSMITH_TRAIN_BASE")  # the product's default, not the test pin
    real = mc.missing_distributions
    monkeypatch.setattr(mc, "missing_distributions", lambda m: [] if m.split else real(m))
    monkeypatch.setattr(service, "describe", lambda base, settings: replace(SMOLLM, path=tmp_path / "base.gguf"))
    settings = Settings.load()
    rows = [{"question": f"What is the code of part {n}?", "answer": f"Part {n} has code X{n}."} for n in range(1, 25)]
    examples = [datasets._example(r, tmp_path / "qa.jsonl", i) for i, r in enumerate(rows, start=1)]

    def rate(base=None, method="auto", **overrides):
        job = service.prepare_run(
            settings, examples, {"kind": "test"}, base=base, method=method, overrides=overrides, available_memory=2**36
        )
        return job.hyperparameters.learning_rate

    assert mc.DEFAULTS[mc.BASE] == mc.QWEN_05B.key and mc.QWEN_05B.learning_rate is not None
    assert rate() == rate("default") == rate(mc.QWEN_05B.key) == mc.QWEN_05B.learning_rate != 1e-3
    assert mc.SMOLLM2.learning_rate is None and rate("smollm2-135m") == 1e-3
    assert rate(str(tmp_path / "base.gguf")) == 1e-3  # a file of one's own: the preset's rate
    assert rate(method="qlora") == QLORA_LEARNING_RATE
    assert rate(learning_rate=5e-3) == rate("smollm2-135m", learning_rate=5e-3) == 5e-3
