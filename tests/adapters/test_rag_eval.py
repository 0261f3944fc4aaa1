"""Before/after evaluation with retrieval on (adapters.rag_eval): the held-out questions in Chat's
prompt, scored like ``eval rag``; end to end through ``train --from-kb`` and ``train --grounded``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters import catalogue, datasets, rag_eval
from adapters import events as ev
from store.settings import Settings
from tests.app_cli import cli
from tests.conftest import run_app

MACHINES = {
    "Vantor K7 turbine": [
        "The rotor of the Vantor K7 spins at most 4,380 rpm.",
        "The gearbox uses Orlisol 220 synthetic oil.",
        "Replace the air filter every 650 operating hours.",
        "The blades are made of titanium aluminide.",
    ],
    "Brisco M2 mixer": [
        "The Brisco M2 drum holds 340 litres.",
        "Its paddles are coated with tungsten carbide.",
        "Grease the main bearing every 90 days with Kelvar EP2.",
        "The motor draws 18 amperes at start.",
    ],
    "Quell P4 pump": [
        "The Quell P4 impeller is cast from duplex steel.",
        "The mechanical seal lasts 7,200 hours.",
        "The maximum discharge pressure is 16 bar.",
        "Flush the casing with demineralised water after use.",
    ],
}
SECTIONS = ["Performance", "Lubrication", "Maintenance", "Materials"]
# Q&A for --grounded: answers found in the manuals, and questions the manuals cannot answer.
ANSWERABLE = [
    ("How fast can the Vantor K7 rotor spin?", "The Vantor K7 rotor spins at most 4,380 rpm."),
    ("Which oil goes into the Vantor K7 gearbox?", "The Vantor K7 gearbox uses Orlisol 220 synthetic oil."),
    (
        "How often is the Vantor K7 air filter replaced?",
        "The Vantor K7 air filter is replaced every 650 operating hours.",
    ),
    ("What are the Vantor K7 blades made of?", "The Vantor K7 blades are made of titanium aluminide."),
    ("How much does the Brisco M2 drum hold?", "The Brisco M2 drum holds 340 litres."),
    ("What coats the Brisco M2 paddles?", "The Brisco M2 paddles are coated with tungsten carbide."),
    (
        "Which grease does the Brisco M2 main bearing take?",
        "The Brisco M2 main bearing takes Kelvar EP2 every 90 days.",
    ),
    ("What current does the Brisco M2 motor draw at start?", "The Brisco M2 motor draws 18 amperes at start."),
    ("What is the Quell P4 impeller cast from?", "The Quell P4 impeller is cast from duplex steel."),
    ("How long does the Quell P4 mechanical seal last?", "The Quell P4 mechanical seal lasts 7,200 hours."),
    ("What is the Quell P4 maximum discharge pressure?", "The Quell P4 maximum discharge pressure is 16 bar."),
    ("What is the Quell P4 casing flushed with?", "The Quell P4 casing is flushed with demineralised water."),
]
UNANSWERABLE = [
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
    ("What is the boiling point of mercury?", "Mercury boils at 356.7 degrees Celsius."),
    ("Which planet has the Great Red Spot?", "Jupiter has the Great Red Spot."),
    ("What is the capital of Australia?", "Canberra is the capital of Australia."),
]


def write_manuals(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (name, facts) in enumerate(MACHINES.items()):
        lines = [f"# {name}", ""]
        for section, fact in zip(SECTIONS, facts, strict=False):
            lines += [f"## {section}", "", fact, ""]
        path = folder / f"manual{i}.md"
        path.write_text("\n".join(lines), encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture
def machines(open_kb, tmp_path):
    kb = open_kb("machines")
    list(kb.add(write_manuals(tmp_path / "manuals")))
    return kb


def qa_examples(pairs) -> list[dict]:
    return [
        {
            "kind": "chat",
            "origin": f"qa.jsonl:{i}",
            "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
        }
        for i, (q, a) in enumerate(pairs, start=1)
    ]


def done_metrics(settings: Settings, run_id: str) -> dict:
    events = catalogue.read_events(catalogue.run_dir(settings, run_id))
    assert isinstance(events[-1], ev.Done), events[-1]
    return events[-1].metrics


def test_held_out_questions_in_chats_prompt_scored_like_eval_rag(machines, embedder):
    from adapters.grounded import grounded_examples
    from assistant.prompting import ABSTAIN_REPLY, SYSTEM_PROMPT

    grounded, _ = grounded_examples(
        machines, qa_examples(ANSWERABLE[:3] + UNANSWERABLE[:2]), threshold=0.5, abstain_share=0.0
    )
    # A held-out question that was also trained on (here: the first one) is left out.
    rows = rag_eval.prepare(machines, grounded[:1], grounded, k=5, threshold=0.5, limit=16)
    assert [r["question"] for r in rows] == [q for q, _ in ANSWERABLE[1:3] + UNANSWERABLE[:2]]
    assert [r["unanswerable"] for r in rows] == [False, False, True, True]
    assert rows[0]["keywords"] == ["orlisol", "220"] and rows[0]["expected_source"] == "manual0.md"
    asked = [r for r in rows if r["messages"]]
    assert asked and all(r["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT} for r in asked)
    assert rows[0]["messages"][1]["content"].startswith('Sources:\n<source n="1">')

    def right(row):  # the reference answer citing the passage that holds it; the abstention otherwise
        if row["unanswerable"]:
            return ABSTAIN_REPLY
        n = next(s["n"] for s in row["sources"] if all(k in s["text"].lower() for k in row["keywords"]))
        return f"{row['reference']} [{n}]"

    replies = {"base": ["Bananas are yellow and curved." for _ in rows], "adapted": [right(r) for r in rows]}
    metrics = rag_eval.score(rows, replies, embedder, 0.5)
    adapted, base = metrics["rag_adapted"], metrics["rag_base"]
    assert adapted == {
        "keyword_accuracy": 1.0,
        "abstention_precision": 1.0,
        "abstention_recall": 1.0,
        "citation_support": 1.0,
        "quoted_passage": 0.0,
        "count": 4,
    }
    # An off-topic reply fails Chat's checks: it becomes the abstention or a quoted passage, never an answer.
    assert base["abstention_recall"] == 1.0 and base["keyword_accuracy"] < 1.0 and base["abstention_precision"] < 1.0
    assert metrics["rag_samples"][0]["adapted"].startswith("The Vantor K7 gearbox uses Orlisol 220")


def test_expected_keywords_are_what_the_answer_adds_to_the_question():
    assert rag_eval.expected_keywords(
        "Which oil goes into the Vantor K7 gearbox?", "The Vantor K7 gearbox uses Orlisol 220 synthetic oil."
    ) == ["orlisol", "220"]
    # "restarting" only restates the question's "starting": a right reply need not use it.
    assert rag_eval.expected_keywords(
        "Which test must be done before starting the Vantor K7 after a shutdown?",
        "Before restarting the Vantor K7 after a shutdown, the Dorrick leak test must be done.",
    ) == ["dorrick", "leak"]


def test_cli_train_from_kb_evaluates_with_retrieval_on(machines, tiny_llama, settings):
    machines.close()  # the app opens it in its own process
    result = run_app(
        "train",
        "--from-kb",
        "machines",
        "--base",
        str(tiny_llama),
        "--preset",
        "quick",
        "--epochs",
        "1",
        "--val-fraction",
        "0.3",
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_id = result.stdout.strip().splitlines()[-1]
    listing = json.loads(run_app("runs", "list", "--json").stdout)["runs"]
    assert [(r["run_id"], r["status"], r["source"]) for r in listing] == [
        (run_id, "done", {"kind": "kb", "name": "machines"})
    ]
    # Its lineage: every document of the knowledge base, none changed since (issue 16).
    run = listing[0]
    assert len(run["lineage"]["documents"]) == 3 and not run["stale"] and run["stale_documents"] == []
    metrics = done_metrics(settings, run_id)
    questions = metrics["rag"]["questions"]
    assert metrics["rag"]["kb"] == "machines" and questions >= 3
    for model in ("rag_base", "rag_adapted"):
        scores = metrics[model]
        assert scores["count"] == questions
        assert 0.0 <= scores["keyword_accuracy"] <= 1.0 and 0.0 <= scores["citation_support"] <= 1.0
        assert scores["abstention_recall"] is None  # every section question is answerable
    assert f"with retrieval on (machines, {questions} held-out questions)" in result.stderr
    assert "citation support" in result.stderr and "abstention recall" in result.stderr
    rows = rag_eval.load(catalogue.run_dir(settings, run_id).rag_eval)
    assert all(not r["unanswerable"] and len(r["keywords"]) == 2 for r in rows)
    assert all(r["question"].startswith("What does ") for r in rows)


def write_qa(path: Path, pairs, **fields) -> Path:
    path.write_text(
        "".join(json.dumps({"question": q, "answer": a, **fields}) + "\n" for q, a in pairs), encoding="utf-8"
    )
    return path


def test_grounded_run_trains_every_expert_row_and_evaluates_held_out_and_eval_file_questions(
    machines, tiny_llama, tmp_path, domainsmith_home
):
    """The expert's own rows all train; generated rows are held out in part; the expert's evaluation
    file is asked too; base, adapted and the base without retrieval side by side, per set."""
    expert, generated = ANSWERABLE[:8], ANSWERABLE[8:] + UNANSWERABLE[:2]
    qa = write_qa(tmp_path / "qa.jsonl", expert)
    with qa.open("a", encoding="utf-8") as f:  # rows `data generate` wrote and the expert accepted
        f.write(write_qa(tmp_path / "gen.jsonl", generated, review="accepted").read_text(encoding="utf-8"))
    reworded = [("At what top speed does the Vantor K7 rotor turn?", ANSWERABLE[0][1]), *UNANSWERABLE[2:]]
    evaluation = write_qa(tmp_path / "eval.jsonl", reworded)
    machines.close()
    result = cli(
        domainsmith_home,
        "train",
        "--data",
        str(qa),
        "--grounded",
        "machines",
        "--eval",
        str(evaluation),
        "--base",
        str(tiny_llama),
        "--epochs",
        "1",
        "--val-fraction",
        "0.3",
        "--max-length",
        "1024",
    )
    assert result.code == 0, result.err
    run_id = result.out.strip().splitlines()[-1]
    settings = Settings.load(home=domainsmith_home)
    folder = catalogue.run_dir(settings, run_id)
    rows = rag_eval.load(folder.rag_eval)
    trained = {datasets.question_of(e) for e in datasets.read_examples(folder.train)}
    assert {q for q, _ in expert} <= trained, "every one of the expert's rows trains"
    assert rows and not trained & {r["question"] for r in rows}  # held out: never trained in any form
    assert {r["set"] for r in rows} == {"held_out", "eval_file"}
    assert {r["question"] for r in rows if r["set"] == "eval_file"} == {q for q, _ in reworded}
    assert {r["question"] for r in rows if r["set"] == "held_out"} <= {q for q, _ in generated}
    assert {r["unanswerable"] for r in rows} == {False, True}
    metrics = done_metrics(settings, run_id)
    assert metrics["rag"] == {"kb": "machines", "questions": len(rows), "k": settings.retrieval_k}
    for model in ("rag_base", "rag_adapted", "rag_plain"):
        assert metrics[model]["count"] == len(rows) and metrics[model]["abstention_recall"] is not None
    assert metrics["rag_plain"]["citation_support"] is None  # the model alone has nothing to cite
    sets = metrics["rag_sets"]
    assert set(sets) == {"held_out", "eval_file"} and sets["eval_file"]["plain"]["count"] == len(reworded)
    assert "with retrieval on (machines" in result.err and "no retrieval" in result.err
    assert "your evaluation file (3)" in result.err


def test_a_run_on_the_experts_rows_alone_says_how_to_measure_it(machines, tiny_llama, tmp_path, domainsmith_home):
    qa = write_qa(tmp_path / "qa.jsonl", ANSWERABLE)
    machines.close()
    result = cli(domainsmith_home, "train", "--data", str(qa), "--base", str(tiny_llama), "--epochs", "1")
    assert result.code == 0, result.err
    assert "12 training and 0 validation examples" in result.err and "pass --eval FILE" in result.err
    every = write_qa(tmp_path / "eval.jsonl", ANSWERABLE[:2])  # all of it trained: nothing to measure with
    refused = cli(domainsmith_home, "train", "--data", str(qa), "--eval", str(every), "--base", str(tiny_llama))
    assert refused.code != 0 and "every question of the evaluation file is also trained on" in refused.err


def test_the_web_facade_hands_its_open_knowledge_base_on(machines, settings, tmp_path, monkeypatch):
    """FineTuner.start (the web app's path) prepares the retrieval-on evaluation with the knowledge base
    it opened through ``open_kb``: no second copy of it, nor of its embedding model, is loaded."""
    from adapters.finetune import FineTuner
    from adapters.service import TrainRequest
    from store.knowledge_base import KnowledgeBase

    opened, handed = [], []
    prepare = rag_eval.prepare

    def spy(kb, *args, **kwargs):
        handed.append(kb)
        return prepare(kb, *args, **kwargs)

    def second_copy(*_args, **_kwargs):
        raise AssertionError("the knowledge base was opened a second time")

    monkeypatch.setattr(rag_eval, "prepare", spy)
    monkeypatch.setattr(KnowledgeBase, "open", second_copy)
    monkeypatch.setattr(FineTuner, "_supervise", lambda self, job: None)  # no worker: only the preparation
    finetuner = FineTuner(settings, lambda name: opened.append(name) or machines)
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in ANSWERABLE + UNANSWERABLE), encoding="utf-8"
    )
    evaluation = write_qa(
        tmp_path / "eval.jsonl", [("At what top speed does the Vantor K7 rotor turn?", ANSWERABLE[0][1])]
    )
    grounded = TrainRequest(data=str(qa), grounded="machines", eval_data=str(evaluation))
    for request in (TrainRequest(kb="machines", val_fraction=0.3), grounded):
        job, notes = finetuner.start(request)
        assert opened[-1] == "machines" and handed[-1] is machines
        assert job.rag["kb"] == "machines" and job.rag["questions"] >= 1
    assert len(opened) == len(handed) == 2
    assert notes[-1].startswith("grounded in machines: ") and job.hyperparameters.max_length == 2048
