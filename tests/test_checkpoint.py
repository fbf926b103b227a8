"""Checkpoints: round trip, tied weights, the state codec, atomic writes, errors, no pickle."""

import json
import os
import pickle
from collections import namedtuple
from dataclasses import dataclass, field

import pytest
import torch
from safetensors import safe_open
from torch import nn

import rnnkit.checkpoint as ckpt
from rnnkit.checkpoint import (
    dataclass_from_dict,
    decode_tree,
    encode_tree,
    load_extra_file,
    load_model,
    load_trainer_state,
    load_weights,
    read_config,
    register_model,
    save_checkpoint,
)
from rnnkit.errors import RnnkitError


@dataclass
class TinyConfig:
    vocab: int = 7
    hidden: int = 5
    sizes: tuple[int, int] = (1, 2)


@register_model
class TinyLM(nn.Module):
    model_type = "tiny_lm_ckpt_test"
    config_class = TinyConfig

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab, config.hidden)
        self.rnn = nn.GRU(config.hidden, config.hidden, batch_first=True)
        self.head = nn.Linear(config.hidden, config.vocab)
        self.head.weight = self.embed.weight  # tied
        self.register_buffer("steps", torch.tensor(3))


@dataclass
class OtherConfig:
    n: int = 2


@register_model
class Other(nn.Module):
    model_type = "other_ckpt_test"
    config_class = OtherConfig

    def __init__(self, config: OtherConfig) -> None:
        super().__init__()
        self.config = config
        self.lin = nn.Linear(config.n, config.n)


def save_tiny(path, seed=0, **kw):
    torch.manual_seed(seed)
    model = TinyLM(TinyConfig(**kw))
    save_checkpoint(path, model, extra_files={"vocab.json": {"a": 0, "b": 1}}, info={"step": 4})
    return model


def same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip_from_any_directory_keeps_ties_and_rng(tmp_path, monkeypatch):
    model = save_tiny(tmp_path / "run" / "best", sizes=(3, 4))
    monkeypatch.chdir(tmp_path / "run")  # a relative path, from elsewhere
    rng = torch.get_rng_state()
    loaded = load_model("best")
    assert torch.equal(rng, torch.get_rng_state())  # building the model drew no numbers
    assert type(loaded) is TinyLM and not loaded.training
    assert loaded.config == TinyConfig(sizes=(3, 4))  # the tuple survives JSON
    assert same(model, loaded)
    assert loaded.head.weight is loaded.embed.weight
    assert load_extra_file("best", "vocab.json") == {"a": 0, "b": 1}
    config = read_config(tmp_path / "run")  # an out_dir resolves to its best/
    assert config["model_type"] == "tiny_lm_ckpt_test" and config["step"] == 4
    assert config["extra_files"] == ["vocab.json"] and config["rnnkit_version"]
    with safe_open(str(tmp_path / "run" / "best" / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert ("head.weight" in keys) != ("embed.weight" in keys)  # the tied weight stored once

    fresh = TinyLM(TinyConfig(sizes=(3, 4)))
    assert not same(model, fresh)
    load_weights(tmp_path / "run" / "best", fresh)
    assert same(model, fresh)


def test_tree_codec_round_trip():
    Pair = namedtuple("Pair", "h c")
    tree = {
        "h": (torch.randn(2, 3), torch.randn(2, 3)),
        "layers": [Pair(torch.ones(1), torch.zeros(1)), None],
        "optim": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(4)}, 1: {}},
        "bytes": torch.arange(5, dtype=torch.uint8),
        "scalars": {"lr": 0.1, "ok": True, "name": "x", "big": 2**40},
        "$weird": 1,
    }
    tensors = {}
    encoded = encode_tree(tree, "s", tensors)
    text = json.dumps(encoded)  # really JSON
    decoded = decode_tree(json.loads(text), tensors)
    assert decoded["scalars"] == tree["scalars"] and decoded["$weird"] == 1
    assert isinstance(decoded["h"], tuple) and torch.equal(decoded["h"][1], tree["h"][1])
    assert isinstance(decoded["layers"][0], tuple) and decoded["layers"][1] is None
    assert set(decoded["optim"]) == {0, 1} and decoded["optim"][0]["step"].item() == 3.0
    assert decoded["bytes"].dtype == torch.uint8
    # stored tensors are copies, so the live ones can change afterwards
    tree["h"][0].add_(1)
    assert not torch.equal(decoded["h"][0], tree["h"][0])
    with pytest.raises(TypeError, match="s.f"):
        encode_tree({"f": object()}, "s", {})


def test_trainer_state_round_trip(tmp_path):
    model = TinyLM(TinyConfig())
    state = {"step": 7, "carried": (torch.randn(1, 2, 5),), "rng": torch.get_rng_state()}
    save_checkpoint(tmp_path / "c", model, trainer_state=state, train_config={"lr": 0.1})
    got = load_trainer_state(tmp_path / "c")
    assert got["step"] == 7 and torch.equal(got["carried"][0], state["carried"][0])
    assert torch.equal(got["rng"], state["rng"])
    assert read_config(tmp_path / "c")["train_config"] == {"lr": 0.1}


def test_write_is_atomic_when_it_fails_midway(tmp_path, monkeypatch):
    target = tmp_path / "last"
    first = save_tiny(target, seed=1)
    before = sorted(p.name for p in tmp_path.iterdir())

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt, "save_file", fail)  # config.json is written, the weights fail
    with pytest.raises(RnnkitError, match=r"last: No space left .*previous checkpoint .* intact"):
        save_tiny(target, seed=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no tmp dir, no .old
    assert same(first, load_model(target))

    monkeypatch.undo()
    second = save_tiny(target, seed=2)  # and a later save replaces it
    assert same(second, load_model(target))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_loader_falls_back_to_old_when_the_swap_was_cut_short(tmp_path):
    model = save_tiny(tmp_path / "last")
    os.replace(tmp_path / "last", tmp_path / "last.old")  # crash between the two renames
    assert same(model, load_model(tmp_path / "last"))
    assert same(model, load_model(tmp_path))
    save_tiny(tmp_path / "last", seed=5)  # the next save puts a target back and drops .old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_refuses_to_overwrite_a_directory_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(RnnkitError, match="not an rnnkit checkpoint"):
        save_tiny(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


def test_errors_name_the_path_and_the_expectation(tmp_path):
    with pytest.raises(RnnkitError, match="does not exist"):
        load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RnnkitError, match="expected config.json"):
        load_model(tmp_path / "empty")

    save_tiny(tmp_path / "c")
    with pytest.raises(RnnkitError, match="holds a 'tiny_lm_ckpt_test' model, expected 'lm'"):
        load_model(tmp_path / "c", expected_type="lm")
    with pytest.raises(RnnkitError, match="expected 'other_ckpt_test'"):
        load_weights(tmp_path / "c", Other(OtherConfig()))
    with pytest.raises(RnnkitError, match="no trainer state.*trainer_state.json"):
        load_trainer_state(tmp_path / "c")

    # a config that does not match the weights
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    config["model_config"]["hidden"] = 6
    (tmp_path / "c" / "config.json").write_text(json.dumps(config))
    with pytest.raises(RnnkitError, match=r"embed.weight has shape \(7, 5\) in the file, \(7, 6\)"):
        load_model(tmp_path / "c")
    config["model_config"]["depth"] = 2
    (tmp_path / "c" / "config.json").write_text(json.dumps(config))
    with pytest.raises(RnnkitError, match=r"unknown fields \['depth'\]"):
        load_model(tmp_path / "c")
    config["model_type"] = "no_such_model"
    (tmp_path / "c" / "config.json").write_text(json.dumps(config))
    with pytest.raises(RnnkitError, match="unknown model_type 'no_such_model'"):
        load_model(tmp_path / "c")

    (tmp_path / "c" / "config.json").write_text('{"format": "rnnkit-checkpoint", ')
    with pytest.raises(RnnkitError, match="config.json is not valid JSON"):
        load_model(tmp_path / "c")

    save_tiny(tmp_path / "d")
    (tmp_path / "d" / "model.safetensors").unlink()
    with pytest.raises(RnnkitError, match="missing model.safetensors"):
        load_model(tmp_path / "d")
    (tmp_path / "d" / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(RnnkitError, match="not a readable safetensors file"):
        load_model(tmp_path / "d")

    save_tiny(tmp_path / "e")
    with pytest.raises(RnnkitError, match=r"missing keys \[lin.weight, lin.bias\]"):
        load_weights(tmp_path / "e", Other(OtherConfig()), expected_type="tiny_lm_ckpt_test")
    with pytest.raises(RnnkitError, match="extra file name"):
        save_checkpoint(tmp_path / "f", Other(OtherConfig()), extra_files={"../x.json": {}})


def test_nothing_is_unpickled(tmp_path, monkeypatch):
    model = TinyLM(TinyConfig())
    save_checkpoint(tmp_path / "c", model, trainer_state={"x": torch.ones(2)})

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used")

    for module, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")]:
        monkeypatch.setattr(module, name, forbidden)
    for name in ("load", "save"):
        monkeypatch.setattr(torch, name, forbidden)
    save_checkpoint(tmp_path / "c", model, trainer_state={"x": torch.ones(2)})
    assert same(model, load_model(tmp_path / "c"))
    assert torch.equal(load_trainer_state(tmp_path / "c")["x"], torch.ones(2))


def test_registry_and_config_helpers():
    class NoType(nn.Module):
        config_class = TinyConfig

    with pytest.raises(TypeError, match="model_type"):
        register_model(NoType)

    class Clash(nn.Module):
        model_type = "tiny_lm_ckpt_test"
        config_class = TinyConfig

    with pytest.raises(TypeError, match="already registered"):
        register_model(Clash)

    @dataclass
    class Inner:
        a: int = 1

    @dataclass
    class Outer:
        inner: Inner = field(default_factory=Inner)
        pair: tuple[int, int] | None = None

    got = dataclass_from_dict(Outer, {"inner": {"a": 2}, "pair": [3, 4]})
    assert got == Outer(Inner(2), (3, 4))
