"""The training settings are declared once (adapters.hyperparameters, adapters.job): the ``train``
flags and the Fine-tune tab's advanced fields are built from that declaration, and its bounds
are what ``validate`` checks."""

from __future__ import annotations

import argparse

import pytest

from adapters.hyperparameters import Hyperparameters, preset
from adapters.job import training_settings
from store.errors import ConfigError
from ui import cli_train, finetune_tab
from ui.cli import build_parser


def train_actions() -> dict[str, argparse.Action]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.option_strings[0]: a for a in sub.choices["train"]._actions if a.option_strings}


def test_the_train_flags_come_from_the_declaration():
    actions = train_actions()
    declared = [s for s in training_settings() if s.spec.flag]
    # The flags, their destinations and types as they always were (outside tools and the README use them),
    # new ones only added.
    assert [(s.spec.flag, s.name, s.type) for s in declared] == [
        ("--epochs", "epochs", int),
        ("--lr", "learning_rate", float),
        ("--lora-r", "lora_r", int),
        ("--lora-alpha", "lora_alpha", int),
        ("--batch-size", "batch_size", int),
        ("--grad-accum", "grad_accum", int),
        ("--max-length", "max_length", int),
        ("--checkpoint-every", "checkpoint_every", int),
        ("--patience", "patience", int),  # added: grounded runs keep their best epoch
        ("--seed", "seed", int),
        ("--val-fraction", "val_fraction", float),
    ]
    for s in declared:
        action = actions[s.spec.flag]
        assert (action.dest, action.type, action.help) == (s.name, s.type, s.spec.help)
        assert action.default == s.blank  # hyperparameters: None (the preset's); seed 0, validation fraction 0.1
    assert actions["--seed"].default == 0 and actions["--val-fraction"].default == 0.1
    assert actions["--checkpoint-every"].metavar == "STEPS" and actions["--patience"].metavar == "EPOCHS"
    args = build_parser().parse_args(["train", "--data", "qa.jsonl", "--lr", "5e-4", "--lora-r", "8"])
    assert (args.learning_rate, args.lora_r, args.epochs, args.handler) == (5e-4, 8, None, cli_train.cmd_train)


def test_the_fine_tune_tab_shows_the_settings_marked_for_it():
    assert finetune_tab.ADVANCED == ("epochs", "learning_rate", "lora_r", "batch_size", "max_length", "seed")
    assert tuple(s.name for s in training_settings() if s.spec.ui) == finetune_tab.ADVANCED
    labels = [s.spec.ui for s in finetune_tab.ADVANCED_SETTINGS]
    assert labels == ["Epochs", "Learning rate", "LoRA rank", "Batch size", "Max tokens per example", "Seed"]


def test_validate_checks_the_declared_bounds():
    assert Hyperparameters().validate() is None
    for change, message in [
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"learning_rate": 0.0}, r"learning_rate must be in \(0, 1\)"),
        ({"learning_rate": 1.0}, r"learning_rate must be in \(0, 1\)"),
        ({"lora_dropout": 1.0}, r"lora_dropout must be in \[0, 1\)"),
        ({"max_length": 15}, "max_length must be at least 16 tokens"),
        ({"checkpoint_every": 0}, "checkpoint_every must be at least 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            preset("quick", **change)
    assert preset("quick", lora_dropout=0.0, learning_rate=0.999).learning_rate == 0.999


def test_the_abstain_share_and_source_order_flags_go_with_grounded_training_only(tmp_path, capsys):
    """``train --abstain-share``: a grounded run's share of cited rows also trained without their passage;
    ``--shuffle-sources``: its sources in a random order."""
    from app import main

    args = build_parser().parse_args(["train", "--data", "qa.jsonl", "--grounded", "kb", "--shuffle-sources"])
    assert args.shuffle_sources and not build_parser().parse_args(["train", "--data", "qa.jsonl"]).shuffle_sources
    code = main(["--home", str(tmp_path / "home"), "train", "--data", "qa.jsonl", "--shuffle-sources"])
    assert code != 0 and "--shuffle-sources needs --grounded" in capsys.readouterr().err

    args = build_parser().parse_args(["train", "--data", "qa.jsonl", "--grounded", "kb", "--abstain-share", "0"])
    assert args.abstain_share == 0.0
    assert build_parser().parse_args(["train", "--data", "qa.jsonl"]).abstain_share is None  # the default share
    code = main(["--home", str(tmp_path / "home"), "train", "--data", "qa.jsonl", "--abstain-share", "0.5"])
    assert code != 0 and "--abstain-share needs --grounded" in capsys.readouterr().err


def test_generated_unanswerable_rows_train_only_with_the_flag():
    """``train --train-unanswerable`` (off by default; the service's test trains and holds them back)."""
    assert build_parser().parse_args(["train", "--data", "rows.jsonl", "--train-unanswerable"]).train_unanswerable
    assert not build_parser().parse_args(["train", "--data", "rows.jsonl"]).train_unanswerable
