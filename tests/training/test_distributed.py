"""Data-parallel training on two CPU processes with gloo, as torchrun would start them.

The ``ranks`` fixture forks two processes with torchrun's environment (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT): the same code path as ``torchrun --nproc-per-node 2``,
without importing torch twice more (the slow test at the end goes through the real launcher
and the CLI). Models are tiny and train a few steps on one thread.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
from test_trainer import ToyConfig, ToyLM

from rnnkit.checkpoint import load_model, load_trainer_state, read_config
from rnnkit.data import StreamBatches, WindowBatches, eval_batches
from rnnkit.data.padded import PaddedBatches
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.training import Callback, TrainConfig, Trainer, evaluate
from rnnkit.training.logs import read_log


def _can_run() -> str | None:
    if "fork" not in multiprocessing.get_all_start_methods():
        return "no fork start method on this platform"
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        return "torch.distributed with gloo is not available"
    return None


pytestmark = pytest.mark.skipif(_can_run() is not None, reason=str(_can_run()))
WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank, port, queue, fn, args):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_WORLD_SIZE=str(WORLD),
    )
    try:
        queue.put((rank, True, fn(*args)))
    except BaseException:
        queue.put((rank, False, traceback.format_exc()))
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def launch(fn, *args, started: list, timeout: float = 240) -> list:
    """``fn(*args)`` on ranks 0 and 1 (forked); their results, in rank order."""
    ctx = multiprocessing.get_context("fork")
    queue, port = ctx.Queue(), _free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, port, queue, fn, args)) for r in (0, 1)]
    started.extend(procs)
    for p in procs:
        p.start()
    results = {}
    deadline = time.monotonic() + timeout
    while len(results) < WORLD:
        rank, ok, value = queue.get(timeout=max(1.0, deadline - time.monotonic()))
        if not ok:
            pytest.fail(f"rank {rank} failed:\n{value}")
        results[rank] = value
    for p in procs:
        p.join(timeout=30)
    return [results[r] for r in range(WORLD)]


def _kill(started: list) -> None:
    for p in started:  # only ours, and only if a failure left them running
        if p.is_alive():
            p.kill()


@pytest.fixture
def ranks():
    """``ranks(fn, *args)``: ``fn(*args)`` on two ranks; their results, in rank order."""
    started: list = []
    yield lambda fn, *args: launch(fn, *args, started=started)
    _kill(started)


# ---- the runs each rank makes -----------------------------------------------------------------

TOKENS = (np.arange(6000) * 7 % 23).astype(np.int64)  # a learnable stream over 23 tokens


def lm(dropout=0.0):
    torch.manual_seed(0)
    return LanguageModel(
        LMConfig(vocab_size=23, embedding_size=8, hidden_size=16, num_layers=1, dropout=dropout)
    )


def lm_sources(stateful):
    train = (
        StreamBatches(TOKENS[:5000], 4, 8)
        if stateful
        else WindowBatches(TOKENS[:5000], 4, 8, seed=3)
    )
    return train, eval_batches(TOKENS[5000:], 4, 8)


def config(**kw):
    base = dict(max_steps=8, eval_every=4, log_every=2, lr=0.01, progress=False, device="cpu")
    return TrainConfig(**{**base, **kw})


def weights(model):
    return {k: v.detach().clone().numpy() for k, v in model.state_dict().items()}


def summary(trainer, result):
    return {
        "weights": weights(trainer.model),
        "reason": result.stopped_reason,
        "steps": result.steps,
        "signal": result.signal,
        "best_step": result.best_step,
        "last": result.last_metrics,
        "history": [(r["step"], r["train_loss"], r["val_loss"]) for r in result.history],
    }


def train_lm(out, stateful=True, dropout=0.0, **kw):
    train, val = lm_sources(stateful)
    trainer = Trainer(lm(dropout), train, val, config(**kw), out)
    return summary(trainer, trainer.fit())


def resume_lm(out, stateful=True, **kw):
    train, val = lm_sources(stateful)
    trainer = Trainer.resume(out, train, val, config(**kw))
    return summary(trainer, trainer.fit())


def full_part_resume(root, stateful):
    """The same run uninterrupted, and stopped after 3 steps then resumed."""
    full = train_lm(root / "full", stateful, dropout=0.3)
    part = train_lm(root / "part", stateful, dropout=0.3, max_steps=3)
    if int(os.environ["RANK"]) == 0:  # kept for the resumes under one process
        shutil.copytree(root / "part", root / "stopped")
    resumed = resume_lm(root / "part", stateful)
    return full, part, resumed


def assert_same(a, b, exact=True, atol=1e-5):
    assert a.keys() == b.keys()
    for k in a:
        if exact:
            assert np.array_equal(a[k], b[k]), k
        else:
            np.testing.assert_allclose(a[k], b[k], atol=atol, err_msg=k)


# ---- tests ------------------------------------------------------------------------------------


def test_two_ranks_train_what_one_process_trains(ranks, tmp_path):
    """Stateful LM: the 4 streams split 2 + 2; the gradients averaged over the ranks are the
    single process's, and so are the validation figures (each rank validates 2 streams)."""
    r0, r1 = ranks(train_lm, tmp_path / "ddp")
    single = train_lm(tmp_path / "one")
    assert_same(r0["weights"], r1["weights"])  # DDP keeps the replicas identical
    assert_same(r0["weights"], single["weights"], exact=False)
    assert r0["last"] == r1["last"]  # every rank sees the same (all-reduced) figures
    assert r0["last"]["val_loss"] == pytest.approx(single["last"]["val_loss"], rel=1e-6)
    # The train loss logged is the mean over both ranks' streams: the single process's.
    for (s, a, _), (t, b, _) in zip(r0["history"], single["history"], strict=True):
        assert s == t and (a is None) == (b is None)
        assert a is None or a == pytest.approx(b, rel=1e-5)
    # Rank 0 wrote the single-process format: it loads without torchrun, without 'module.'.
    ckpt = tmp_path / "ddp" / "last"
    loaded = load_model(ckpt)
    assert not any(k.startswith("module.") for k in loaded.state_dict())
    assert_same(weights(loaded), r0["weights"])
    assert read_config(ckpt)["model_type"] == "language_model"
    steps = [row["step"] for row in read_log(tmp_path / "ddp" / "log.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == 8  # one writer: no row twice
    state = load_trainer_state(ckpt)
    assert state["world_size"] == 2 and len(state["rank_rng"]) == 2
    assert state["carried_state"][0].shape == (1, 4, 16)  # every stream's state, gathered


def classify_run(out):
    """Stateless: a classifier on padded examples; records which batches the rank read."""
    rng = np.random.default_rng(0)
    inputs = [rng.integers(1, 9, size=int(rng.integers(2, 7))) for _ in range(46)]
    labels = [int(x.sum() % 2) for x in inputs]
    train = Recording(PaddedBatches(inputs[:36], labels[:36], 4, seed=1))  # 9 batches
    val = PaddedBatches(inputs[36:], labels[36:], 4, shuffle=False)  # 3 batches
    torch.manual_seed(0)
    model = SequenceClassifier(
        ClassifierConfig(vocab_size=9, num_classes=2, embedding_size=8, hidden_size=8, num_layers=1)
    )
    cfg = config(max_steps=0, epochs=2, eval_every=0, monitor="val_accuracy")
    trainer = Trainer(model, train, val, cfg, out)
    result = trainer.fit()
    return {**summary(trainer, result), "read": train.read, "val": val}


class Recording:
    """A source that notes the (epoch, index) of every batch it hands out."""

    stateful = False

    def __init__(self, source):
        self.source, self.read = source, []

    def num_batches(self):
        return self.source.num_batches()

    def batch(self, epoch, index):
        self.read.append((epoch, index))
        return self.source.batch(epoch, index)


def test_stateless_ranks_read_disjoint_batches_and_agree_on_validation(ranks, tmp_path):
    r0, r1 = ranks(classify_run, tmp_path)
    assert r0["steps"] == r1["steps"] == 2 * (9 // 2)  # 4 steps an epoch, batch 8 unread
    assert r0["reason"] == "completed"
    for epoch in (0, 1):
        read = sorted(i for e, i in r0["read"] + r1["read"] if e == epoch)
        assert read == list(range(8))
    assert {i % 2 for e, i in r1["read"]} == {1}  # rank 1: batches 1, 3, 5, 7
    assert_same(r0["weights"], r1["weights"])
    assert r0["last"] == r1["last"] and r0["best_step"] == r1["best_step"]
    # The all-reduced validation is the whole validation set's, as one process measures it.
    best = load_model(tmp_path / "best")
    found = evaluate(best, r0["val"])
    assert r0["last"]["val_accuracy"] == pytest.approx(found["accuracy"])


@pytest.fixture(scope="module")
def stopped_runs(tmp_path_factory):
    """Both kinds of LM trained on 2 ranks: uninterrupted, and stopped at step 3 + resumed."""
    root = tmp_path_factory.mktemp("resume")
    out, started = {}, []
    try:
        for kind in ("stateful", "stateless"):
            r0, _ = launch(full_part_resume, root / kind, kind == "stateful", started=started)
            out[kind] = (root / kind, *r0)
    finally:
        _kill(started)
    return out


@pytest.mark.parametrize("kind", ["stateful", "stateless"])
def test_resume_under_the_same_world_size_is_exact(stopped_runs, kind):
    _, full, part, resumed = stopped_runs[kind]
    assert part["steps"] == 3 and resumed["steps"] == full["steps"] == 8
    assert_same(resumed["weights"], full["weights"])  # bit for bit, with dropout
    assert resumed["last"] == full["last"]


def test_resume_stateful_under_one_process_continues_the_streams(stopped_runs):
    root, full, _, _ = stopped_runs["stateful"]
    for name in ("last", "best"):  # the 2-rank checkpoint needs no torchrun
        assert isinstance(load_model(root / "stopped" / name), LanguageModel)
    train, val = lm_sources(True)
    trainer = Trainer.resume(root / "stopped", train, val, config())
    assert (trainer.step, trainer.epoch, trainer.index) == (3, 0, 3)
    assert trainer.carried[0].shape == (1, 4, 16)  # all 4 streams carried on
    result = trainer.fit()
    assert result.steps == 8
    # Same batches, same carried state; only the dropout draws of rank 1's streams differ.
    assert result.last_metrics["val_loss"] == pytest.approx(full["last"]["val_loss"], rel=0.05)


def test_resume_stateless_under_one_process_maps_the_position(stopped_runs):
    root, *_ = stopped_runs["stateless"]
    train, val = lm_sources(False)
    trainer = Trainer.resume(root / "stopped", train, val, config())
    # 3 steps of 2 batches (one per rank): the single process goes on at global batch 6.
    assert (trainer.step, trainer.epoch, trainer.index) == (3, 0, 6)
    assert trainer.fit().steps == 8


class StopOnRank1(Callback):
    """Sends rank 1 SIGTERM twice after step 3 (as a scheduler and torchrun both would)."""

    def on_log(self, trainer, row):
        if trainer.dist.rank == 1 and row["step"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)


def train_until_signal(out):
    train, val = lm_sources(True)
    cfg = config(max_steps=50, log_every=1, eval_every=0, save_every=0)
    trainer = Trainer(lm(), train, val, cfg, out, callbacks=[StopOnRank1()])
    return summary(trainer, trainer.fit())


def test_sigterm_on_one_rank_stops_every_rank_with_one_checkpoint(ranks, tmp_path):
    r0, r1 = ranks(train_until_signal, tmp_path)
    assert r0["reason"] == r1["reason"] == "interrupted"
    assert r0["signal"] == r1["signal"] == "SIGTERM"  # rank 0 exits 143 too
    assert r0["steps"] == r1["steps"] == 3  # the next step never started
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "log.csv", "loss_curve.png"]
    assert load_trainer_state(tmp_path / "last")["step"] == 3
    assert_same(weights(load_model(tmp_path / "last")), r0["weights"])


def nan_on_rank1(out):
    torch.manual_seed(0)
    model = ToyLM(ToyConfig(vocab=23))
    if int(os.environ["RANK"]) == 1:
        model.hook = lambda calls: setattr(
            model.config, "loss_scale", 1.0 if calls <= 3 else np.nan
        )
    train, val = lm_sources(True)
    trainer = Trainer(model, train, val, config(max_steps=20, eval_every=2), out)
    return summary(trainer, trainer.fit())


def test_a_nan_on_one_rank_stops_every_rank(ranks, tmp_path):
    r0, r1 = ranks(nan_on_rank1, tmp_path)
    assert r0["reason"] == r1["reason"] == "nonfinite_loss"
    assert r0["steps"] == r1["steps"] == 3
    assert load_trainer_state(tmp_path / "last")["step"] == 2  # the last good checkpoint


@pytest.mark.slow
def test_cli_under_torchrun_trains_stops_and_resumes(tmp_path):
    """The real launcher: `torchrun --nproc-per-node 2 -m rnnkit lm train ...`,
    SIGTERM to torchrun mid-run (it passes it on to both ranks), then --resume to the end."""
    text = tmp_path / "data.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400, encoding="utf-8")
    out = tmp_path / "run"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    args = [*launcher, "-m", "rnnkit", "lm", "train", str(text), "--out", str(out)]
    args += ["--hidden-size", "16", "--embedding-size", "8", "--num-layers", "1"]
    args += ["--batch-size", "4", "--seq-length", "16", "--device", "cpu", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [*args, "--max-steps", "100000", "--log-every", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "log.csv").exists() or len(read_log(out / "log.csv")) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert stdout.count("stopped (interrupted)") == 1, stderr  # rank 0 speaks for both
    stopped = load_trainer_state(out / "last")["step"]
    assert stopped >= 3
    done = subprocess.run(
        [*args, "--resume", "--max-steps", str(stopped + 4)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(f"stopped (max_steps) after {stopped + 4} steps") == 1
    assert "distributed: 2 processes (gloo on cpu)" in done.stderr
    assert isinstance(load_model(Path(out)), LanguageModel)
