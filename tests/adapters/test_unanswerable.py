"""Unanswerable questions made by renaming (adapters.unanswerable) on a real knowledge base: which name is
renamed, that the invented one occurs nowhere in it, and generation falling back to renaming when the
model's own unanswerable question is answerable."""

from __future__ import annotations

import json

import pytest

from adapters import datagen_filters as filters
from adapters.datagen import GenerateOptions, generate
from adapters.unanswerable import INVENTED, rename, subject_word
from assistant.prompting import ABSTAIN_REPLY
from store import fts
from tests.adapters.test_rag_eval import ANSWERABLE, MACHINES, write_manuals

FONTS = "# X11 fonts\n\n## Font directories\n\nEach font directory holds a fonts.dir file listing its fonts.\n"
HANDBOOK = {  # two documents whose titles share the collection's name
    "pumps.md": "# Pumps — Field Handbook\n\nPrime a pump before its first start.\n",
    "valves.md": "# Valves — Field Handbook\n\nExercise each valve twice a year.\n",
}


@pytest.fixture
def machines(open_kb, tmp_path):
    kb = open_kb("machines")
    write_manuals(tmp_path / "manuals")
    (tmp_path / "manuals" / "fonts.md").write_text(FONTS)
    for name, text in HANDBOOK.items():
        (tmp_path / "manuals" / name).write_text(text)
    list(kb.add([tmp_path / "manuals"]))
    return kb


def absent(kb, word: str) -> bool:
    return not fts.keyword_search(kb.db, kb.id, word, 1)


def test_the_product_name_is_renamed_to_a_word_the_knowledge_base_never_uses(machines):
    renamed = rename("Which oil goes into the Vantor K7 gearbox?", machines)
    assert renamed is not None and renamed.name == "Vantor" and renamed.invented[0].isupper()
    assert renamed.question == f"Which oil goes into the {renamed.invented} K7 gearbox?"
    assert renamed.invented.lower() in INVENTED and absent(machines, renamed.invented)
    original = "Which oil goes into the Vantor K7 gearbox?"
    assert renamed.to_json() == {"renamed": {"from": original, "name": "Vantor", "invented": renamed.invented}}
    # The article follows the invented word ("an Istrel", "a Quillon").
    articles = set()
    for seed in range(40):
        made = rename("What is the maximum speed of a Vantor K7 turbine?", machines, seed)
        article = "an" if made.invented[0] in "AEIOU" else "a"
        assert made.question == f"What is the maximum speed of {article} {made.invented} K7 turbine?"
        articles.add(article)
    assert articles == {"a", "an"}
    # The same question and seed give the same word.
    assert rename("Which oil goes into the Vantor K7 gearbox?", machines) == renamed


def test_an_identifier_is_renamed_before_a_capitalised_word(machines):
    word = subject_word("Which Vantor K7 part lists the fonts.dir file?", machines)
    assert word in {"fonts", "dir"}


def test_no_name_to_rename_or_a_collections_name_or_a_word_said_twice_gives_nothing(machines):
    assert rename("How often is the air filter replaced?", machines) is None, "no name in it"
    assert rename("Which Zentrox Q9 harvester is meant?", machines) is None, "its name is not in the knowledge base"
    # "Field Handbook" is in two documents' titles: where to look, not what is asked.
    assert subject_word("How is a pump primed according to the Field Handbook?", machines) is None
    assert subject_word("What does the Field Handbook say about the Vantor gearbox?", machines) == "Vantor"
    # One document's own title may be the subject.
    assert subject_word("What is the maximum speed of the Vantor K7 turbine?", machines) == "Vantor"
    assert subject_word("Is the Brisco drum of the Brisco M2 mixer steel?", machines) is None


def test_a_renamed_question_is_not_a_duplicate_of_its_original_only(machines):
    long = "How often must the air filter of the Vantor K7 be replaced during normal operation at dusty building sites?"
    seen = filters.Duplicates([long])
    renamed = rename(long, machines)
    assert renamed is not None and renamed.name == "Vantor"
    assert seen.check(renamed.question) == "duplicate", "near its original by the token rule"
    assert seen.check(renamed.question, renamed.original) is None
    seen.add(renamed.question)
    assert seen.check(renamed.question, renamed.original) == "duplicate", "but never twice"


class AnswerableOnly:
    """A model that answers each passage with its fact's Q&A and, asked for an unanswerable question,
    writes one the documents answer (what small generators do)."""

    def __call__(self, messages, seed, max_tokens, done) -> str:
        user = messages[-1]["content"]
        if "does NOT mention" in messages[0]["content"]:
            return "Q: How fast can the Vantor K7 rotor spin?\n"
        for fact, (question, answer) in zip([f for facts in MACHINES.values() for f in facts], ANSWERABLE, strict=True):
            if fact in user:
                return f"Q: {question}\nA: {answer}\n"
        return "Nothing to ask."


def test_generation_renames_when_the_models_unanswerable_question_is_answerable(machines, settings, tmp_path):
    out = tmp_path / "gen.jsonl"
    events = list(generate(machines, settings, AnswerableOnly(), "scripted", out, GenerateOptions(per_chunk=1)))
    report = events[-1].report
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    rejected = [json.loads(line) for line in (tmp_path / "gen.rejected.jsonl").read_text().splitlines()]
    renamed = [r for r in rows if r["kind"] == "unanswerable"]
    assert renamed and report.unanswerable == report.renamed == len(renamed)
    assert report.unanswerable <= 0.25 * report.kept + 1
    answerable = {r["question"] for r in rows if r["kind"] == "answerable"}
    for row in renamed:
        assert row["answer"] == ABSTAIN_REPLY and row["renamed"]["from"] in answerable
        assert row["renamed"]["name"] not in row["question"] and row["renamed"]["invented"] in row["question"]
        assert absent(machines, row["renamed"]["invented"])
        source = next(r for r in rows if r["question"] == row["renamed"]["from"])
        assert row["provenance"]["chunk_id"] == source["provenance"]["chunk_id"]
    # The model's own attempts were answerable: rejected and counted, as before.
    own = [r for r in rejected if r["kind"] == "unanswerable"]
    assert own and {r["reason"] for r in own} <= {"answerable_in_kb", "duplicate"}
    assert report.candidates == len(rows) + len(rejected)
