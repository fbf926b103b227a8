"""Flags generated from config dataclasses: names, types, choices, booleans, defaults, help."""

import argparse
import dataclasses
from dataclasses import dataclass, field

import pytest

from rnnkit.cli.args import add_dataclass_args, dataclass_from_args, given_fields
from rnnkit.models.language_model import LMConfig
from rnnkit.tasks.lm import LMDataConfig
from rnnkit.training import TrainConfig


@dataclass
class Toy:
    hidden_size: int = field(default=8, metadata={"help": "units"})
    rate: float = 0.5
    name: str = field(default="", metadata={"help": "100% optional"})
    cell: str = field(default="lstm", metadata={"choices": ["lstm", "gru"]})
    shuffle: bool = field(default=True, metadata={"help": "reorder"})
    limit: int | None = None
    internal: int = field(default=0, metadata={"cli": False})
    tags: list = field(default_factory=list, metadata={"cli": False})


@dataclass
class WithTuple:
    size: int = 1
    betas: tuple[float, float] = (0.9, 0.99)


def parser_for(cls=Toy, **kw) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t")
    add_dataclass_args(p, cls, **kw)
    return p


def test_a_field_becomes_a_typed_dashed_flag():
    ns = parser_for().parse_args(["--hidden-size", "32", "--rate", "0.1", "--limit", "4"])
    assert ns.hidden_size == 32 and ns.rate == 0.1 and ns.limit == 4
    assert isinstance(ns.rate, float) and isinstance(ns.limit, int)


def test_flags_not_given_are_absent_so_defaults_come_from_the_dataclass():
    ns = parser_for().parse_args(["--rate", "2"])
    assert given_fields(Toy, ns) == {"rate": 2.0}
    assert dataclass_from_args(Toy, ns) == Toy(rate=2.0)
    base = Toy(hidden_size=99, shuffle=False)
    assert dataclass_from_args(Toy, ns, base=base) == Toy(hidden_size=99, shuffle=False, rate=2.0)


def test_bool_fields_get_a_negative_form():
    p = parser_for()
    assert p.parse_args(["--no-shuffle"]).shuffle is False
    assert p.parse_args(["--shuffle"]).shuffle is True
    assert not hasattr(p.parse_args([]), "shuffle")


def test_choices_and_types_are_checked_by_argparse(capsys):
    p = parser_for()
    assert p.parse_args(["--cell", "gru"]).cell == "gru"
    for argv, message in (
        (["--cell", "rnn"], "invalid choice: 'rnn'"),
        (["--hidden-size", "1.5"], "invalid int value: '1.5'"),
        (["--rate", "fast"], "invalid float value: 'fast'"),
    ):
        with pytest.raises(SystemExit) as exc:
            p.parse_args(argv)
        assert exc.value.code == 2
        assert message in capsys.readouterr().err


def test_excluded_and_non_cli_fields_have_no_flag(capsys):
    p = parser_for(exclude=("rate",))
    for flag in ("--rate", "--internal"):
        with pytest.raises(SystemExit):
            p.parse_args([flag, "1"])
        assert "unrecognized arguments" in capsys.readouterr().err


def test_help_shows_the_text_the_default_and_the_group(capsys):
    with pytest.raises(SystemExit):
        parser_for(title="toy options").parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "toy options:" in out
    assert "--hidden-size HIDDEN_SIZE units (default: 8)" in out
    assert "100% optional (default: '')" in out  # a % in the help text is not a format
    assert "--shuffle, --no-shuffle reorder (default: True)" in out
    assert "--cell {lstm,gru}" in out


def test_a_field_without_a_flag_form_must_be_left_out():
    with pytest.raises(TypeError, match=r"WithTuple.betas .* has no flag form"):
        parser_for(WithTuple)
    ns = parser_for(WithTuple, exclude=("betas",)).parse_args(["--size", "3"])
    assert dataclass_from_args(WithTuple, ns) == WithTuple(size=3)


CONFIGS = [(LMConfig, ()), (LMDataConfig, ()), (TrainConfig, ("betas",))]


@pytest.mark.parametrize(("cls", "exclude"), CONFIGS)
def test_every_field_of_the_lm_configs_is_a_flag(cls, exclude):
    p = parser_for(cls, exclude=exclude)
    flags = {opt for action in p._actions for opt in action.option_strings}
    for f in dataclasses.fields(cls):
        if f.name in exclude or f.metadata.get("cli") is False:
            continue
        assert "--" + f.name.replace("_", "-") in flags, f.name


def test_string_annotations_resolve_to_their_types():
    # TrainConfig is written with `from __future__ import annotations`: its hints are strings.
    p = parser_for(TrainConfig, exclude=("betas",))
    ns = p.parse_args(["--lr", "0.01", "--epochs", "3", "--no-progress", "--device", "cpu"])
    assert dataclass_from_args(TrainConfig, ns) == TrainConfig(
        lr=0.01, epochs=3, progress=False, device="cpu"
    )
    with pytest.raises(SystemExit):
        p.parse_args(["--epochs", "3.5"])


def test_all_three_configs_share_one_parser_without_clashes():
    p = argparse.ArgumentParser()
    for cls, exclude in CONFIGS:
        add_dataclass_args(p, cls, exclude=exclude)
    ns = p.parse_args(["--hidden-size", "32", "--seq-length", "20", "--lr", "0.5", "--seed", "4"])
    assert given_fields(LMConfig, ns) == {"hidden_size": 32}
    assert given_fields(LMDataConfig, ns) == {"seq_length": 20}
    assert given_fields(TrainConfig, ns) == {"lr": 0.5, "seed": 4}
