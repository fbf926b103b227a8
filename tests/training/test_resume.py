"""Exact resume: a run stopped (max_steps, KeyboardInterrupt, Ctrl-C) and resumed ends with the
same weights, bit for bit, as the run that was never stopped."""

import os
import random
import signal

import numpy as np
import pytest
import torch
from test_trainer import StreamSource, ToyConfig, ToyLM, WindowSource, cfg, make_model

from rnnkit.checkpoint import load_trainer_state, save_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.training import Trainer
from rnnkit.training.rng import capture_rng, restore_rng

N = 13  # total steps: 2.6 epochs of 5 batches
SOURCES = {"stateful": StreamSource, "stateless": WindowSource}


def config(**kw):
    # Validation every 4 steps and at epoch ends, a plateau schedule and early-stopping counters:
    # everything a checkpoint must carry takes part.
    base = dict(
        epochs=10,
        max_steps=N,
        eval_every=4,
        log_every=3,
        lr_schedule="plateau",
        lr_decay=0.7,
        early_stopping_patience=50,
    )
    return cfg(**{**base, **kw})


def run(out_dir, kind, dropout, model=None, resume=False, **kw):
    if model is None:
        # A resumed run starts, as a fresh process would, from a model with other initial weights.
        model = make_model(seed=9 if resume else 3, dropout=dropout)
    source = SOURCES[kind]
    trainer = Trainer(model, source(), source(seed=1, batches=2), config(**kw), out_dir)
    return trainer, trainer.fit(resume=resume)


def assert_same_weights(a, b):
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("kind", ["stateful", "stateless"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("k", [5, 7])  # stop at an epoch end / mid-epoch
def test_resume_after_max_steps_is_exact(tmp_path, kind, dropout, k):
    full, full_result = run(tmp_path / "full", kind, dropout)
    run(tmp_path / "part", kind, dropout, max_steps=k)
    # A fresh process would rebuild everything: a new model with other initial weights.
    part, result = run(tmp_path / "part", kind, dropout, resume=True)
    assert result.steps == N and result.stopped_reason == "max_steps"
    assert_same_weights(full.model, part.model)
    assert result.last_val_loss == full_result.last_val_loss
    # The log carries on where the checkpoint was: no row twice, the same rows as uninterrupted,
    # plus the final validation of the part that stopped at step k (unless k validated anyway).
    validated_at_k = any(r["step"] == k and r["val_loss"] is not None for r in full_result.history)
    cut = [r for r in result.history if r["step"] == k and r["train_loss"] is None]
    extra = [] if validated_at_k else cut
    assert len(cut) == 1 and cut[0]["val_loss"] is not None
    rest = [r for r in result.history if not any(r is e for e in extra)]
    assert [r["step"] for r in rest] == [r["step"] for r in full_result.history]
    assert [r["val_loss"] for r in rest] == [r["val_loss"] for r in full_result.history]
    # That validation competes for best/ without changing the run: best is the better of the two.
    if extra and extra[0]["val_loss"] < full_result.best_val_loss:
        assert (result.best_step, result.best_val_loss) == (k, extra[0]["val_loss"])
    else:
        assert (result.best_step, result.best_val_loss) == (
            full_result.best_step,
            full_result.best_val_loss,
        )


def test_resume_is_exact_in_bf16_mixed_precision(tmp_path):
    full, _ = run(tmp_path / "full", "stateful", 0.3, precision="bf16")
    run(tmp_path / "part", "stateful", 0.3, max_steps=7, precision="bf16")
    part, result = run(tmp_path / "part", "stateful", 0.3, resume=True, precision="bf16")
    assert result.steps == N
    assert_same_weights(full.model, part.model)


def test_keyboard_interrupt_saves_and_resume_is_exact(tmp_path):
    full, _ = run(tmp_path / "full", "stateful", 0.3)

    model = make_model(seed=3, dropout=0.3)

    def interrupt(call):
        if call == 8:  # inside the forward pass of step 8, after dropout drew nothing yet
            raise KeyboardInterrupt

    model.hook = interrupt
    _, result = run(tmp_path / "part", "stateful", 0.3, model=model)
    assert result.stopped_reason == "interrupted" and result.steps == 7
    assert load_trainer_state(tmp_path / "part" / "last")["step"] == 7
    part, result = run(tmp_path / "part", "stateful", 0.3, resume=True)
    assert result.steps == N
    assert_same_weights(full.model, part.model)


class DropoutThenInterrupt(ToyLM):
    """Raises KeyboardInterrupt after dropout has drawn random numbers in the forward pass."""

    interrupt_at = 0

    def compute_loss(self, batch, state=None):
        out = super().compute_loss(batch, state)
        if self.training and self.train_calls == self.interrupt_at:
            raise KeyboardInterrupt
        return out


def test_interrupt_after_dropout_draws_rewinds_the_rng(tmp_path):
    full, _ = run(tmp_path / "full", "stateless", 0.5)
    torch.manual_seed(3)  # as make_model(seed=3) does
    model = DropoutThenInterrupt(ToyConfig(dropout=0.5))
    model.interrupt_at = 7  # the last checkpoint before is step 5's: step 6's must be written
    _, result = run(tmp_path / "part", "stateless", 0.5, model=model)
    assert (result.stopped_reason, result.steps) == ("interrupted", 6)
    assert load_trainer_state(tmp_path / "part" / "last")["step"] == 6
    part, _ = run(tmp_path / "part", "stateless", 0.5, resume=True)
    assert_same_weights(full.model, part.model)


@pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="SIGINT is handled by someone else here",
)
def test_ctrl_c_finishes_the_step_then_saves(tmp_path):
    full, _ = run(tmp_path / "full", "stateful", 0.3)
    model = make_model(seed=3, dropout=0.3)

    def ctrl_c(call):
        if call == 6:
            os.kill(os.getpid(), signal.SIGINT)

    model.hook = ctrl_c
    _, result = run(tmp_path / "part", "stateful", 0.3, model=model)
    assert (result.stopped_reason, result.steps) == ("interrupted", 6)  # step 6 was completed
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler put back
    part, _ = run(tmp_path / "part", "stateful", 0.3, resume=True)
    assert_same_weights(full.model, part.model)


def test_trainer_resume_rebuilds_model_and_config_from_the_checkpoint(tmp_path):
    full, _ = run(tmp_path / "full", "stateful", 0.3)
    run(tmp_path / "part", "stateful", 0.3, max_steps=6)
    trainer = Trainer.resume(
        tmp_path / "part", StreamSource(), StreamSource(seed=1, batches=2), config(), model=None
    )
    assert isinstance(trainer.model, ToyLM) and trainer.step == 6
    result = trainer.fit()
    assert result.steps == N and trainer.out_dir == tmp_path / "part"
    assert_same_weights(full.model, trainer.model)
    assert result.elapsed > 0

    # the saved config is the one of the last part (max_steps=N): nothing left to do
    again = Trainer.resume(tmp_path / "part" / "last", StreamSource(), StreamSource(seed=1))
    assert again.config.max_steps == N
    assert again.fit().steps == N


def test_resume_errors(tmp_path):
    with pytest.raises(RnnkitError, match="nothing to resume"):
        run(tmp_path / "none", "stateful", 0.0, resume=True)
    run(tmp_path / "a", "stateful", 0.0, max_steps=2)
    with pytest.raises(RnnkitError, match="optimizer='adam'.*'sgd'"):
        run(tmp_path / "a", "stateful", 0.0, resume=True, optimizer="sgd")
    trainer = Trainer(
        make_model(), StreamSource(batches=1), StreamSource(seed=1), config(), tmp_path / "a"
    )
    with pytest.raises(RnnkitError, match="only 1 batches"):
        trainer.fit(resume=True)


def test_every_global_rng_round_trips_through_a_checkpoint(tmp_path):
    random.seed(3)
    np.random.seed(4)
    random.gauss(0, 1)  # python caches the second gaussian: that is state too
    save_checkpoint(tmp_path / "c", make_model(), trainer_state={"rng": capture_rng()})

    def draws():
        return (
            random.random(),
            random.gauss(0, 1),
            np.random.rand(),
            np.random.randn(),
            torch.rand(3),
        )

    first = draws()
    restore_rng(load_trainer_state(tmp_path / "c")["rng"])
    again = draws()
    assert first[:4] == again[:4] and torch.equal(first[4], again[4])
