"""The Trainer on a toy LSTM language model: learning, optimisers, schedules, clipping, stopping,
logs and checkpoints. The toy model and sources here are reused by test_resume.py."""

import importlib.util
import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.checkpoint import load_model, read_config, register_model
from rnnkit.errors import RnnkitError
from rnnkit.training import (
    Callback,
    LossOutput,
    LRSchedule,
    TrainConfig,
    Trainer,
    evaluate,
)

V = 11  # vocabulary
H = 16  # hidden size (= embedding size: the output layer is tied to the embedding)


@dataclass
class ToyConfig:
    vocab: int = V
    hidden: int = H
    dropout: float = 0.0
    loss_scale: float = 1.0


@register_model
class ToyLM(nn.Module):
    """Embedding → dropout → LSTM → dropout → Linear tied to the embedding."""

    model_type = "toy_lm_test"
    config_class = ToyConfig

    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab, config.hidden)
        self.lstm = nn.LSTM(config.hidden, config.hidden, batch_first=True)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab)
        self.head.weight = self.embed.weight
        self.hook = None  # test hook: called with the number of training calls so far
        self.train_calls = 0
        self.states_seen = []

    def compute_loss(self, batch, state=None):
        x, y = batch
        if self.training:
            self.train_calls += 1
            self.states_seen.append(state)
            if self.hook is not None:
                self.hook(self.train_calls)
        h, state = self.lstm(self.drop(self.embed(x)), state)
        logits = self.head(self.drop(h))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        return LossOutput(loss * self.config.loss_scale, state, y.numel())


def pattern(n: int, seed: int) -> torch.Tensor:
    """A learnable token stream: t → t+3 (mod V), with 10% of tokens replaced at random."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.arange(n) * 3 + int(torch.randint(V, (1,), generator=g))) % V
    noise = torch.rand(n, generator=g) < 0.1
    return torch.where(noise, torch.randint(V, (n,), generator=g), x)


class StreamSource:
    """Stateful: B parallel streams cut into consecutive windows of T tokens."""

    stateful = True

    def __init__(self, B=4, T=8, batches=5, seed=0):
        self.T, self.batches = T, batches
        data = pattern(B * (T * batches + 1), seed).view(B, -1)
        self.x, self.y = data[:, :-1], data[:, 1:]

    def num_batches(self):
        return self.batches

    def batch(self, epoch, index):
        s = slice(index * self.T, (index + 1) * self.T)
        return self.x[:, s], self.y[:, s]


class WindowSource:
    """Stateless: random windows, drawn by a generator seeded from (epoch, index)."""

    stateful = False

    def __init__(self, B=4, T=8, batches=5, seed=0, n=400):
        self.B, self.T, self.batches, self.seed = B, T, batches, seed
        self.data = pattern(n, seed)

    def num_batches(self):
        return self.batches

    def batch(self, epoch, index):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 1000 + index)
        starts = torch.randint(len(self.data) - self.T - 1, (self.B,), generator=g)
        win = torch.stack([self.data[s : s + self.T + 1] for s in starts.tolist()])
        return win[:, :-1], win[:, 1:]


def make_model(seed=0, **kw):
    torch.manual_seed(seed)
    return ToyLM(ToyConfig(**kw))


def cfg(**kw):
    base = dict(epochs=1, lr=0.01, log_every=1, progress=False, device="cpu", seed=0)
    return TrainConfig(**{**base, **kw})


# ----------------------------------------------------------------------------- learning


def test_loss_decreases_on_learnable_stream(tmp_path):
    model = make_model()
    train, val = StreamSource(batches=10), StreamSource(batches=3, seed=1)
    before = evaluate(model, val)["loss"]
    result = Trainer(model, train, val, cfg(epochs=6), tmp_path).fit()
    assert result.stopped_reason == "completed"
    assert result.steps == 60 and result.epochs == 6
    assert result.last_val_loss < 0.5 * before, (before, result.last_val_loss)
    assert result.best_val_loss <= result.last_val_loss
    # logs and checkpoints
    assert (tmp_path / "best" / "model.safetensors").is_file()
    assert (tmp_path / "last" / "trainer_state.safetensors").is_file()
    header = (tmp_path / "log.csv").read_text().splitlines()[0]
    assert header == "step,epoch,train_loss,val_loss,lr,tokens_per_s,elapsed"
    rows = result.history
    assert [r["step"] for r in rows] == list(range(1, 61))
    assert sum(r["val_loss"] is not None for r in rows) == 6  # one validation per epoch end
    assert all(r["tokens_per_s"] > 0 for r in rows)
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    best = load_model(tmp_path)  # out_dir → best/
    assert evaluate(best, val)["loss"] == pytest.approx(result.best_val_loss, rel=1e-6)
    assert read_config(tmp_path / "best")["step"] == result.best_step


def test_bf16_mixed_precision_learns_and_carries_a_float32_state():
    model = make_model()
    train, val = StreamSource(batches=10), StreamSource(batches=3, seed=1)
    before = evaluate(model, val)["loss"]
    result = Trainer(model, train, val, cfg(epochs=6, precision="bf16")).fit()
    assert result.last_val_loss < 0.5 * before, (before, result.last_val_loss)
    carried = [s for s in model.states_seen if s is not None]
    assert carried and all(t.dtype == torch.float32 for s in carried for t in s)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    # The forward pass really ran in bfloat16: the weights differ from a float32 run's.
    fp32 = make_model()
    Trainer(fp32, train, val, cfg(epochs=6)).fit()
    assert not torch.equal(fp32.head.weight, model.head.weight)


def test_auto_precision_is_bf16_exactly_where_the_cpu_has_amx():
    from pathlib import Path

    from rnnkit.training.device import uses_bf16

    cpu = torch.device("cpu")
    assert uses_bf16("bf16", cpu) and not uses_bf16("fp32", cpu)
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo to compare with")
    assert uses_bf16("auto", cpu) == (" amx_tile" in cpuinfo.read_text())


def test_evaluate_is_token_weighted_and_keeps_mode_and_rng():
    model = make_model(dropout=0.5)

    class Uneven:
        stateful = False

        def num_batches(self):
            return 2

        def batch(self, epoch, index):
            return StreamSource(B=1 + 3 * index, batches=1, seed=index).batch(0, 0)

    losses, tokens = [], []
    model.eval()
    with torch.no_grad():
        for i in range(2):
            out = model.compute_loss(Uneven().batch(0, i))
            losses.append(out.loss.item())
            tokens.append(out.num_tokens)
    model.train()
    rng = torch.get_rng_state()
    got = evaluate(model, Uneven())["loss"]
    assert got == pytest.approx(
        sum(l * n for l, n in zip(losses, tokens, strict=True)) / sum(tokens)
    )
    assert model.training and torch.equal(rng, torch.get_rng_state())
    assert evaluate(model, Uneven(), max_batches=1) == {"loss": pytest.approx(losses[0])}


def test_stateful_source_carries_detached_state_and_resets_each_epoch():
    model = make_model()
    Trainer(model, StreamSource(batches=3), config=cfg(epochs=2)).fit()
    seen = model.states_seen
    assert [s is None for s in seen] == [True, False, False, True, False, False]
    assert all(not t.requires_grad for s in seen if s is not None for t in s)

    model = make_model()
    Trainer(model, WindowSource(batches=3), config=cfg(epochs=1)).fit()
    assert all(s is None for s in model.states_seen)


# ----------------------------------------------------------------------------- optimisers, lr


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_each_optimizer_trains(optimizer):
    model = make_model()
    before = [p.detach().clone() for p in model.parameters()]
    config = cfg(optimizer=optimizer, momentum=0.9 if optimizer in ("sgd", "rmsprop") else 0.0)
    result = Trainer(model, StreamSource(), config=config).fit()
    assert result.steps == 5
    assert all(math.isfinite(r["train_loss"]) for r in result.history)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def lrs(schedule, steps, **kw):
    s = LRSchedule(TrainConfig(lr=1.0, lr_schedule=schedule, **kw), total_steps=steps)
    return [s.lr(i) for i in range(steps)]


def test_lr_schedules():
    assert lrs("none", 4) == [1, 1, 1, 1]
    assert lrs("step", 5, lr_decay=0.5, lr_decay_every=2) == [1, 1, 0.5, 0.5, 0.25]
    assert lrs("exponential", 3, lr_decay=0.25, lr_decay_every=2) == pytest.approx([1, 0.5, 0.25])
    cos = lrs("cosine", 11, min_lr=0.1)
    assert cos[0] == 1 and cos[5] == pytest.approx(0.55) and cos[10] == pytest.approx(0.1)
    warm = lrs("cosine", 14, warmup_steps=4)
    assert warm[:4] == [0.25, 0.5, 0.75, 1.0] and warm[13] == pytest.approx(0.0)
    assert lrs("step", 3, lr_decay=0.1, lr_decay_every=1, min_lr=0.05) == [1, 0.1, 0.05]

    s = LRSchedule(TrainConfig(lr=1.0, lr_schedule="plateau", plateau_patience=2), 10)
    for val, expected in [(3, 1), (2, 1), (2.5, 1), (2.1, 0.5), (2.2, 0.5), (1, 0.5), (5, 0.5)]:
        s.on_eval(val)
        assert s.lr(0) == expected
    t = LRSchedule(TrainConfig(lr=1.0, lr_schedule="plateau", plateau_patience=2), 10)
    t.load_state_dict(s.state_dict())
    t.on_eval(5)
    assert t.lr(0) == 0.25


@pytest.mark.parametrize("schedule", ["none", "step", "exponential", "plateau", "cosine"])
def test_each_schedule_runs_and_sets_the_optimizer_lr(schedule):
    config = cfg(
        epochs=2, lr_schedule=schedule, lr_decay=0.5, lr_decay_every=3, warmup_steps=2, eval_every=2
    )
    trainer = Trainer(make_model(), StreamSource(), StreamSource(seed=1), config)
    result = trainer.fit()
    logged = [row["lr"] for row in result.history]
    replay = LRSchedule(config, trainer.total_steps)
    want = []
    for row in result.history:  # the plateau decisions replayed from the logged val losses
        want.append(replay.lr(row["step"] - 1))
        if row["val_loss"] is not None:
            replay.on_eval(row["val_loss"])
    assert logged == pytest.approx(want)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(want[-1])
    if schedule not in ("none", "plateau"):  # (plateau decays only when validation stalls)
        assert min(logged[2:]) < config.lr


# ----------------------------------------------------------------------------- clipping


def grads_after_one_step(**kw):
    model = make_model(loss_scale=1000.0)  # large gradients
    Trainer(model, StreamSource(), config=cfg(optimizer="sgd", lr=1e-12, max_steps=1, **kw)).fit()
    return [p.grad for p in model.parameters()]


def test_clip_by_norm_and_by_value():
    raw = grads_after_one_step(grad_clip=0.0)
    raw_norm = torch.cat([g.flatten() for g in raw]).norm()
    assert raw_norm > 10 and max(g.abs().max() for g in raw) > 1

    clipped = grads_after_one_step(grad_clip=1.0, clip_mode="norm")
    norm = torch.cat([g.flatten() for g in clipped]).norm()
    assert norm == pytest.approx(1.0, rel=1e-4)
    for a, b in zip(raw, clipped, strict=True):  # same direction, rescaled
        torch.testing.assert_close(a / raw_norm, b, rtol=1e-4, atol=1e-7)

    valued = grads_after_one_step(grad_clip=0.01, clip_mode="value")
    assert max(g.abs().max() for g in valued) == pytest.approx(0.01)
    for a, b in zip(raw, valued, strict=True):
        torch.testing.assert_close(a.clamp(-0.01, 0.01), b)


# ----------------------------------------------------------------------------- stopping


class ConstValLM(ToyLM):
    """Validation loss never improves after the first evaluation."""

    def compute_loss(self, batch, state=None):
        out = super().compute_loss(batch, state)
        if not self.training:
            return LossOutput(torch.tensor(1.0), out.state, out.num_tokens)
        return out


def test_early_stopping():
    torch.manual_seed(0)
    model = ConstValLM(ToyConfig())
    config = cfg(epochs=10, eval_every=1, early_stopping_patience=3)
    result = Trainer(model, StreamSource(), StreamSource(seed=1), config).fit()
    assert result.stopped_reason == "early_stopping"
    assert result.steps == 4 and result.best_step == 1 and result.best_val_loss == 1.0


def test_validation_schedule_with_and_without_epoch_ends():
    def validated_steps(**kw):
        result = Trainer(make_model(), StreamSource(), StreamSource(seed=1), cfg(**kw)).fit()
        return [r["step"] for r in result.history if r["val_loss"] is not None]

    # 5 batches per epoch, 3 epochs
    assert validated_steps(epochs=3) == [5, 10, 15]
    assert validated_steps(epochs=3, eval_every=4) == [4, 5, 8, 10, 12, 15]
    assert validated_steps(epochs=3, eval_every=4, eval_at_epoch_end=False) == [4, 8, 12]
    with pytest.raises(RnnkitError, match="eval_at_epoch_end=False needs eval_every"):
        cfg(eval_at_epoch_end=False)


def test_max_steps_time_budget_and_callback_stop():
    assert Trainer(make_model(), StreamSource(), config=cfg(epochs=9, max_steps=7)).fit().steps == 7
    result = Trainer(make_model(), StreamSource(), config=cfg(epochs=9, max_minutes=1e-9)).fit()
    assert result.stopped_reason == "time_budget" and result.steps == 0

    class StopAtThree(Callback):
        def on_log(self, trainer, row):
            if row["step"] == 3:
                trainer.request_stop()

    result = Trainer(make_model(), StreamSource(), config=cfg(epochs=9), callbacks=[StopAtThree()])
    result = result.fit()
    assert (result.stopped_reason, result.steps) == ("callback", 3)


def test_save_every_writes_last_and_the_end_is_always_saved(tmp_path, capsys):
    class Saves(Callback):
        def __init__(self):
            self.saved = []

        def on_save(self, trainer, path):
            self.saved.append((path.name, trainer.step))

    saves = Saves()
    config = cfg(epochs=3, max_steps=5, save_every=2, progress=True)
    Trainer(
        make_model(), StreamSource(batches=4), config=config, out_dir=tmp_path, callbacks=[saves]
    ).fit()
    assert saves.saved == [("last", 2), ("last", 4), ("last", 5)]
    assert "5/5" in capsys.readouterr().err  # the progress bar


def test_nonfinite_loss_stops_without_overwriting_last(tmp_path, caplog):
    model = make_model()
    Trainer(model, StreamSource(), config=cfg(max_steps=2), out_dir=tmp_path).fit()
    good = (tmp_path / "last" / "model.safetensors").read_bytes()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    model.config.loss_scale = float("nan")
    trainer = Trainer.resume(tmp_path, StreamSource(), config=cfg(epochs=2, save_every=1))
    trainer.model.config.loss_scale = float("nan")
    result = trainer.fit()
    # Caught at the step it appears (step 3), before the optimizer: no step taken, nothing saved.
    assert result.stopped_reason == "nonfinite_loss" and result.steps == 2
    assert result.last_good_step == 2
    assert "training loss is nan at step 3" in caplog.text
    assert "last/ at step 2 is the last good checkpoint" in caplog.text
    assert (tmp_path / "last" / "model.safetensors").read_bytes() == good
    assert all(torch.equal(weights[k], v) for k, v in trainer.model.state_dict().items())


def test_nonfinite_loss_mid_run_is_caught_at_its_step_even_with_save_every(tmp_path):
    class NanAt(ToyLM):
        def compute_loss(self, batch, state=None):
            self.calls = getattr(self, "calls", 0) + 1
            out = super().compute_loss(batch, state)
            return out._replace(loss=out.loss * float("nan")) if self.calls == 4 else out

    torch.manual_seed(3)
    model = NanAt(ToyConfig())
    result = Trainer(
        model, StreamSource(), config=cfg(epochs=2, save_every=1), out_dir=tmp_path
    ).fit()
    assert result.stopped_reason == "nonfinite_loss" and result.steps == 3
    assert read_config(tmp_path / "last")["step"] == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_callbacks_do_not_shift_the_training_rng():
    class Noisy(Callback):
        def on_eval(self, trainer, val_loss, improved):
            torch.rand(100)  # e.g. sampling text
            trainer.model.eval()

    def run(callbacks):
        model = make_model(dropout=0.3)
        config = cfg(epochs=2, eval_every=2)
        Trainer(model, StreamSource(), StreamSource(seed=1), config, callbacks=callbacks).fit()
        return model

    a, b = run([]), run([Noisy()])
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_init_from_loads_weights_for_a_fresh_run(tmp_path):
    source = make_model(seed=1)
    Trainer(source, StreamSource(), config=cfg(max_steps=3), out_dir=tmp_path / "a").fit()
    trained = [p.detach().clone() for p in source.parameters()]

    class Capture(Callback):
        def on_fit_start(self, trainer):
            self.params = [p.detach().clone() for p in trainer.model.parameters()]

    cap = Capture()
    config = cfg(max_steps=1, init_from=str(tmp_path / "a" / "last"))
    Trainer(make_model(seed=2), StreamSource(), config=config, callbacks=[cap]).fit()
    assert all(torch.equal(a, b) for a, b in zip(trained, cap.params, strict=True))


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "field, value",
    [
        ("optimizer", "adagrad"),
        ("lr", 0.0),
        ("lr", "1e-3"),
        ("momentum", 1.0),
        ("betas", (0.9, 1.5)),
        ("grad_clip", -1.0),
        ("clip_mode", "l1"),
        ("epochs", 0),
        ("max_steps", -1),
        ("lr_schedule", "triangle"),
        ("lr_decay", 1.5),
        ("device", "tpu"),
        ("log_every", 0),
        ("progress", 1),
        ("eval_every", 2.5),
        ("threads", -1),
        ("precision", "fp16"),
    ],
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises(RnnkitError, match=field):
        TrainConfig(**{field: value})


def test_config_round_trip_and_trainer_errors():
    config = TrainConfig(betas=(0.8, 0.99), lr_schedule="cosine")
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(RnnkitError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"learning_rate": 1.0})
    with pytest.raises(RnnkitError, match="plateau"):
        Trainer(make_model(), StreamSource(), config=cfg(lr_schedule="plateau"))
    with pytest.raises(RnnkitError, match="BatchSource"):
        Trainer(make_model(), object(), config=cfg())
    with pytest.raises(RnnkitError, match="compute_loss"):
        Trainer(nn.Linear(2, 2), StreamSource(), config=cfg())
    if not torch.cuda.is_available():
        with pytest.raises(RnnkitError, match="CUDA"):
            Trainer(make_model(), StreamSource(), config=cfg(device="cuda"))


def test_threads_sets_torch_intra_op_threads():
    before = torch.get_num_threads()
    try:
        Trainer(make_model(), StreamSource(), config=cfg(threads=before + 1))
        assert torch.get_num_threads() == before + 1
        Trainer(make_model(), StreamSource(), config=cfg(threads=0))  # 0 leaves it alone
        assert torch.get_num_threads() == before + 1
    finally:
        torch.set_num_threads(before)


def test_loss_meter_keeps_no_tensor_of_a_step_alive():
    """A per-step tensor kept until the next log row pins the heap (RSS grew to 13.8 GB)."""
    import gc
    import weakref

    from rnnkit.training.metrics import LossMeter

    meter = LossMeter()
    losses = [torch.tensor(2.0), torch.tensor(4.0)]
    refs = [weakref.ref(t) for t in losses]
    meter.add(losses[0], 1)
    meter.add(losses[1], 3)
    del losses
    gc.collect()
    assert all(r() is None for r in refs)
    mean, _, metrics, tokens = meter.take()
    assert mean == pytest.approx((2.0 * 1 + 4.0 * 3) / 4) and (metrics, tokens) == ({}, 4)


def test_cosine_and_linear_decay_over_the_time_budget():
    from rnnkit.training.optim import LRSchedule

    for schedule, middle in (("cosine", 0.5), ("linear", 0.5)):
        config = TrainConfig(lr=0.01, min_lr=0.0, lr_schedule=schedule, max_minutes=2.0)
        s = LRSchedule(config, total_steps=10**6)
        assert s.lr(0, elapsed=0.0) == pytest.approx(0.01)
        assert s.lr(5, elapsed=60.0) == pytest.approx(0.01 * middle)
        assert s.lr(9, elapsed=120.0) == pytest.approx(0.0, abs=1e-12)
    # linear is a straight line, cosine is not
    lin = LRSchedule(TrainConfig(lr=1.0, lr_schedule="linear", max_minutes=1.0), 10**6)
    cos = LRSchedule(TrainConfig(lr=1.0, lr_schedule="cosine", max_minutes=1.0), 10**6)
    assert lin.lr(1, elapsed=15.0) == pytest.approx(0.75)
    assert cos.lr(1, elapsed=15.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    # the step limit, when it comes first, is the horizon
    short = LRSchedule(TrainConfig(lr=1.0, lr_schedule="linear", max_minutes=60.0), 11)
    assert short.lr(10, elapsed=1.0) == pytest.approx(0.0)


def test_a_time_budgeted_run_ends_near_min_lr(tmp_path):
    config = cfg(epochs=10**6, lr_schedule="cosine", max_minutes=0.02, min_lr=1e-4, log_every=1)
    result = Trainer(make_model(), StreamSource(), config=config).fit()
    assert result.stopped_reason == "time_budget"
    lrs = [r["lr"] for r in result.history if r["lr"] is not None]
    assert lrs[0] > 0.9 * 0.01 and lrs[-1] < 0.2 * 0.01
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))
