r"""The forecaster: read ``lookback`` steps of a series, forecast the next ``horizon``.

A window of the (scaled) series holds ``lookback + horizon`` rows of C = T + P + F columns:
the T targets, the P past covariates (known up to now) and the F future covariates (known
ahead: calendar features, planned promotions), in that order. Three multi-step strategies:

.. code-block:: text

    recursive  [y, f]_1 … [y, f]_t ─► RNN ─► head ─► ŷ_{t+1}     fed back as the next input
    direct     [y, p, f]_1 … _L ─► RNN ─► h_L ─┬─► head ─► ŷ_{L+1} … ŷ_{L+H}   all at once
                    f_{L+1} … f_{L+H} ─────────┘
    seq2seq    [y, p, f]_1 … _L ─► encoder ─► state, h_L
               [f_{L+h}, e_h, h_L] ─► decoder (from that state) ─► head ─► ŷ_{L+h}, h = 1 … H

The recursive model is trained like a language model (the next step at every position of the
window, teacher forcing) and forecasts by feeding its forecast back; it cannot use past
covariates (their future is unknown) nor read backwards. The direct model (Darts' BlockRNN)
emits the H steps from the encoder's last output and the future covariates of the horizon;
the encoder-decoder (MQ-RNN's shape) unrolls a decoder over the horizon reading each step's
future covariates and a learned step embedding e_h.

``level="last"`` makes a model level-free: a window's targets are taken relative to its last
observed value (y − y_L, scaled units) on the way in and that value is added back on the way
out (exact for intervals too). ``ensemble`` K trains K networks of this shape side by side
from different initial weights on the same batches; the forecast is their mean (the bounds
too), which steadies small-data forecasts (Lakshminarayanan et al. 2017's deep ensembles).

Outputs per target and step, by ``loss``: ``mse`` / ``mae`` one point; ``quantile`` the
quantiles (1 − interval)/2, 0.5, (1 + interval)/2 by the pinball loss; ``gaussian`` a mean and
a standard deviation by likelihood, as DeepAR (Salinas et al. 2020). The point forecast is the
mean, the median or μ; the interval the outer quantiles or μ ± z·σ, or with ``samples`` the
quantiles of sampled paths (a recursive model feeds each path its own draws back, as DeepAR).

=============================  ============================================
argument / result              shape
=============================  ============================================
window (training batch)        (B, lookback + horizon, C) float32
history                        (B, lookback, C)
future                         (B, horizon, F) future covariates
:class:`Forecast` fields       (B, horizon, T); samples (S, B, horizon, T)
=============================  ============================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.contracts import LossOutput
from rnnkit.errors import RnnkitError
from rnnkit.models.recurrent import RecurrentConfig
from rnnkit.nn.layers import LAYERS
from rnnkit.registry import register_model

STRATEGIES = ("recursive", "direct", "seq2seq")
LOSSES = ("mse", "mae", "quantile", "gaussian")
LEVELS = ("none", "last")
STEP_EMBEDDING = 8  # size of the horizon-step embedding the seq2seq decoder reads
MIN_SIGMA = 1e-3  # floor of the Gaussian's standard deviation (scaled units)


@dataclass
class ForecasterConfig(RecurrentConfig):
    """The shape of a forecaster. Fields without a flag are filled from the data."""

    hidden_size: int = field(default=64, metadata={"help": "N, units per recurrent layer"})
    num_layers: int = field(default=1, metadata={"help": "stacked recurrent layers"})
    dropout: float = field(
        default=0.0,
        metadata={
            "help": "dropout between recurrent layers and before the output layer",
            "fine_tune": True,
        },
    )
    strategy: str = field(
        default="direct",
        metadata={
            "help": "multi-step strategy: recursive (one step, fed back), direct (H outputs "
            "at once), seq2seq (an encoder-decoder unrolled over the horizon)",
            "choices": list(STRATEGIES),
        },
    )
    loss: str = field(
        default="mse",
        metadata={
            "help": "mse, mae, quantile (pinball: intervals) or gaussian (likelihood, DeepAR)",
            "choices": list(LOSSES),
        },
    )
    interval: float = field(
        default=0.8,
        metadata={"help": "coverage of the prediction interval (quantile and gaussian loss)"},
    )
    level: str = field(
        default="none",
        metadata={
            "help": "last: read and forecast the targets relative to the last observed value",
            "choices": list(LEVELS),
        },
    )
    ensemble: int = field(
        default=5,
        metadata={"help": "networks trained side by side from different initial weights"},
    )
    lookback: int = field(default=0, metadata={"cli": False, "derived": True})
    horizon: int = field(default=0, metadata={"cli": False, "derived": True})
    n_targets: int = field(default=0, metadata={"cli": False, "derived": True})
    n_past: int = field(default=0, metadata={"cli": False, "derived": True})
    n_future: int = field(default=0, metadata={"cli": False, "derived": True})

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, value, choices in (
            ("strategy", self.strategy, STRATEGIES),
            ("loss", self.loss, LOSSES),
            ("level", self.level, LEVELS),
        ):
            if value not in choices:
                raise RnnkitError(f"{name} must be one of {list(choices)}, got {value!r}")
        if not 0.0 < self.interval < 1.0:
            raise RnnkitError(f"interval must be in (0, 1), e.g. 0.8, got {self.interval}")
        if self.ensemble < 1:
            raise RnnkitError(f"ensemble must be >= 1, got {self.ensemble}")
        for name in ("lookback", "horizon", "n_targets", "n_past", "n_future"):
            if getattr(self, name) < 0:
                raise RnnkitError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.strategy == "recursive" and self.bidirectional:
            raise RnnkitError(
                "the recursive strategy predicts each step from the past only: bidirectional "
                "must be False"
            )
        if self.strategy == "recursive" and self.n_past:
            raise RnnkitError(
                "the recursive strategy feeds its forecasts back and cannot forecast past "
                "covariates: use strategy direct or seq2seq, or give them as future covariates"
            )

    @property
    def quantiles(self) -> tuple[float, float, float]:
        """(lower, 0.5, upper) of the central ``interval``."""
        return ((1 - self.interval) / 2, 0.5, (1 + self.interval) / 2)

    @property
    def outputs_per_target(self) -> int:
        """K: 1 point, 3 quantiles or 2 Gaussian parameters per target and step."""
        return {"quantile": 3, "gaussian": 2}.get(self.loss, 1)

    @property
    def has_interval(self) -> bool:
        return self.loss in ("quantile", "gaussian")


class Forecast(NamedTuple):
    """A forecast in the model's (scaled) space: the point, the interval bounds (None for
    mse/mae) and, when drawn, sampled paths."""

    point: Tensor  # (B, H, T)
    lower: Tensor | None = None
    upper: Tensor | None = None
    samples: Tensor | None = None  # (S, B, H, T)


@register_model
class Forecaster(nn.Module):
    """``ensemble`` networks of one strategy (module docs), trained and averaged together."""

    model_type = "forecaster"
    config_class = ForecasterConfig

    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        c = config
        if c.lookback < 1 or c.horizon < 1 or c.n_targets < 1:
            raise RnnkitError(
                f"lookback ({c.lookback}), horizon ({c.horizon}) and n_targets ({c.n_targets}) "
                "must be >= 1 (they come from the data)"
            )
        self.config = c
        self.members = nn.ModuleList(ForecastNetwork(c) for _ in range(c.ensemble))

    @property
    def n_columns(self) -> int:
        """C = T + P + F columns of a window."""
        c = self.config
        return c.n_targets + c.n_past + c.n_future

    def _check(self, history: Tensor, future: Tensor | None) -> Tensor:
        c = self.config
        if history.dim() != 3 or history.shape[2] != self.n_columns or history.shape[1] < 1:
            raise RnnkitError(
                f"history must have shape (B, L, {self.n_columns}), got {tuple(history.shape)}"
            )
        B = history.shape[0]
        if future is None:
            if c.n_future:
                raise RnnkitError(f"the model reads {c.n_future} future covariates: pass future")
            future = history.new_zeros(B, c.horizon, 0)
        if tuple(future.shape) != (B, c.horizon, c.n_future):
            raise RnnkitError(
                f"future must have shape ({B}, {c.horizon}, {c.n_future}), got "
                f"{tuple(future.shape)}"
            )
        return future

    def compute_loss(self, batch: dict[str, Tensor], state=None) -> LossOutput:
        """Mean loss over the windows of ``batch["window"]`` (B, L + H, C), averaged over the
        ensemble's networks.

        The recursive model is scored on the next step at every position (teacher forcing),
        the others on the horizon. In eval mode the metrics are the errors of the multi-step
        forecast over the horizon, in the scaled space (sums: absolute and squared error,
        values inside the interval, values).
        """
        c = self.config
        window = batch["window"]
        if window.dim() != 3 or tuple(window.shape[1:]) != (c.lookback + c.horizon, self.n_columns):
            raise RnnkitError(
                f"window must have shape (B, {c.lookback + c.horizon}, {self.n_columns}), got "
                f"{tuple(window.shape)}"
            )
        loss = torch.stack([m.window_loss(window) for m in self.members]).mean()
        metrics = {}
        if not self.training:
            L, T = c.lookback, c.n_targets
            truth = window[:, L:, :T]
            forecast = self.forecast(window[:, :L], window[:, L:, T + c.n_past :])
            err = forecast.point - truth
            metrics = {
                "abs_error": err.abs().sum().double(),
                "squared_error": err.pow(2).sum().double(),
                "values": truth.numel(),
            }
            if forecast.lower is not None:
                inside = (truth >= forecast.lower) & (truth <= forecast.upper)
                metrics["covered"] = inside.sum().double()
        return LossOutput(loss, None, window.shape[0], metrics)

    def summarize_metrics(self, totals: dict, num_tokens: int) -> dict[str, float]:
        """mae and rmse of the multi-step forecasts (scaled units), and interval coverage."""
        n = float(totals.get("values", 0))
        if not n:
            return {}
        out = {
            "mae": float(totals["abs_error"]) / n,
            "rmse": math.sqrt(float(totals["squared_error"]) / n),
        }
        if "covered" in totals:
            out["coverage"] = float(totals["covered"]) / n
        return out

    @torch.no_grad()
    def forecast(
        self,
        history: Tensor,
        future: Tensor | None = None,
        *,
        samples: int = 0,
        generator: torch.Generator | None = None,
    ) -> Forecast:
        """The ``horizon`` steps after ``history`` (B, L, C), given the future covariates of
        those steps (B, H, F): the ensemble's mean point and bounds. With ``samples`` > 0 a
        Gaussian model draws that many paths (split among the networks) and the bounds are
        their quantiles."""
        future = self._check(history, future)
        outs = [m.forecast(history, future) for m in self.members]
        point = torch.stack([o.point for o in outs]).mean(0)
        if not self.config.has_interval:
            return Forecast(point)
        if samples and self.config.loss == "gaussian":
            K = len(self.members)
            counts = [samples // K + (k < samples % K) for k in range(K)]
            paths = torch.cat(
                [
                    m.sample(history, future, n, generator)
                    for m, n in zip(self.members, counts, strict=True)
                    if n
                ]
            )
            lo, hi = self.config.quantiles[0], self.config.quantiles[2]
            q = torch.tensor([lo, hi], dtype=paths.dtype, device=paths.device)
            lower, upper = torch.quantile(paths, q, dim=0)
            return Forecast(point, lower, upper, paths)
        lower = torch.stack([o.lower for o in outs]).mean(0)
        upper = torch.stack([o.upper for o in outs]).mean(0)
        return Forecast(point, lower, upper)


class ForecastNetwork(nn.Module):
    """One network of the ensemble: the recurrent encoder and the strategy's head."""

    def __init__(self, c: ForecasterConfig) -> None:
        super().__init__()
        self.config = c
        T, K, F_, H = c.n_targets, c.outputs_per_target, c.n_future, c.horizon
        self.drop = nn.Dropout(c.dropout)
        if c.strategy == "recursive":
            self.rnn = c.build_rnn(T + F_)
            self.head = nn.Linear(c.output_size, T * K)
        elif c.strategy == "direct":
            self.rnn = c.build_rnn(T + c.n_past + F_)
            self.head = nn.Linear(c.output_size + H * F_, H * T * K)
        else:
            self.rnn = c.build_rnn(T + c.n_past + F_)
            self.step_embedding = nn.Embedding(H, STEP_EMBEDDING)
            self.decoder = LAYERS[c.cell](
                F_ + STEP_EMBEDDING + c.output_size,
                c.hidden_size,
                num_layers=c.num_layers,
                dropout=c.dropout,
            )
            self.head = nn.Linear(c.hidden_size, T * K)

    # ---- levels and parameters -------------------------------------------------------------

    def _level(self, targets: Tensor) -> Tensor:
        """The level (B, 1, T) of a window's observed targets (B, L, T): 0 or the last."""
        if self.config.level == "last":
            return targets[:, -1:]
        return torch.zeros_like(targets[:, :1])

    def _split(self, out: Tensor) -> Tensor:
        """Head output (..., T·K) → (..., T, K)."""
        return out.unflatten(-1, (self.config.n_targets, self.config.outputs_per_target))

    def _recursive_inputs(self, rows: Tensor, level: Tensor) -> Tensor:
        """What the recursive RNN reads of ``rows`` (B, t, C): targets less the level, and
        the future covariates."""
        T, P = self.config.n_targets, self.config.n_past
        return torch.cat([rows[..., :T] - level, rows[..., T + P :]], -1)

    def horizon_params(self, history: Tensor, future: Tensor) -> tuple[Tensor, Tensor]:
        """Direct and seq2seq: output parameters (B, H, T, K) relative to the level, and the
        level (B, 1, T)."""
        c = self.config
        T, B, H = c.n_targets, history.shape[0], c.horizon
        level = self._level(history[..., :T])
        x = torch.cat([history[..., :T] - level, history[..., T:]], -1)
        outputs, state = self.rnn(x)
        last = outputs[:, -1]  # (B, D·N)
        if c.strategy == "direct":
            flat = torch.cat([self.drop(last), future.flatten(1)], dim=1)
            return self._split(self.head(flat).unflatten(1, (H, -1))), level
        steps = self.step_embedding.weight.unsqueeze(0).expand(B, H, -1)
        context = last.unsqueeze(1).expand(B, H, -1)
        init = None if c.bidirectional else state  # a bidirectional state has 2L rows
        decoded, _ = self.decoder(torch.cat([future, steps, context], dim=2), init)
        return self._split(self.head(self.drop(decoded))), level

    def window_loss(self, window: Tensor) -> Tensor:
        """The training loss of one batch of windows (B, L + H, C)."""
        c = self.config
        L, T = c.lookback, c.n_targets
        if c.strategy == "recursive":
            level = self._level(window[:, :L, :T])
            hidden, _ = self.rnn(self._recursive_inputs(window[:, :-1], level))
            params = self._split(self.head(self.drop(hidden)))
            return self._loss(params, window[:, 1:, :T] - level)
        params, level = self.horizon_params(window[:, :L], window[:, L:, T + c.n_past :])
        return self._loss(params, window[:, L:, :T] - level)

    def _loss(self, params: Tensor, y: Tensor) -> Tensor:
        """Mean loss of ``params`` (..., T, K) against ``y`` (..., T)."""
        kind = self.config.loss
        if kind == "mse":
            return F.mse_loss(params[..., 0], y)
        if kind == "mae":
            return F.l1_loss(params[..., 0], y)
        if kind == "quantile":
            return pinball_loss(params, y, self.config.quantiles)
        mu, sigma = gaussian_params(params)
        return gaussian_nll(mu, sigma, y)

    # ---- forecasts -------------------------------------------------------------------------

    def _from_params(self, params: Tensor, level: Tensor | float) -> Forecast:
        """Point and bounds (..., T) from parameters (..., T, K), the level added back."""
        kind = self.config.loss
        if kind in ("mse", "mae"):
            return Forecast(params[..., 0] + level)
        if kind == "quantile":
            q = params.sort(dim=-1).values  # crossing quantiles would give lower > upper
            return Forecast(q[..., 1] + level, q[..., 0] + level, q[..., 2] + level)
        mu, sigma = gaussian_params(params)
        z = NormalDist().inv_cdf(self.config.quantiles[2])
        return Forecast(mu + level, mu - z * sigma + level, mu + z * sigma + level)

    def forecast(self, history: Tensor, future: Tensor) -> Forecast:
        """Point and bounds (B, H, T) after ``history`` (B, L, C)."""
        if self.config.strategy == "recursive":
            return self._rollout(history, future, sample=False, generator=None)
        params, level = self.horizon_params(history, future)
        return self._from_params(params, level)

    def sample(
        self, history: Tensor, future: Tensor, n: int, generator: torch.Generator | None
    ) -> Tensor:
        """``n`` sampled paths (n, B, H, T) of a Gaussian model."""
        B = history.shape[0]
        if self.config.strategy == "recursive":
            rep = lambda t: t.repeat(n, *([1] * (t.dim() - 1)))  # noqa: E731
            paths = self._rollout(rep(history), rep(future), sample=True, generator=generator)
            return paths.point.unflatten(0, (n, B))
        params, level = self.horizon_params(history, future)
        mu, sigma = gaussian_params(params)
        noise = torch.randn((n, *mu.shape), generator=generator, dtype=mu.dtype)
        return mu + sigma * noise.to(mu.device) + level

    def _rollout(
        self, history: Tensor, future: Tensor, sample: bool, generator: torch.Generator | None
    ) -> Forecast:
        """Feed each step's point (or a draw, ``sample``) back as the next input, H times."""
        c = self.config
        level = self._level(history[..., : c.n_targets])
        hidden, state = self.rnn(self._recursive_inputs(history, level))
        last = hidden[:, -1:]
        steps: list[Forecast] = []
        for h in range(c.horizon):
            params = self._split(self.head(self.drop(last)))[:, 0]  # (B, T, K)
            if sample:
                mu, sigma = gaussian_params(params)
                noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
                out = Forecast(mu + sigma * noise.to(mu.device))
            else:
                out = self._from_params(params, 0.0)
            steps.append(out)
            if h + 1 < c.horizon:
                x = torch.cat([out.point, future[:, h]], dim=-1).unsqueeze(1)
                last, state = self.rnn(x, state)
        stack = lambda ts: torch.stack(ts, 1) + level  # noqa: E731
        point = stack([s.point for s in steps])
        if steps[0].lower is None:
            return Forecast(point)
        return Forecast(point, stack([s.lower for s in steps]), stack([s.upper for s in steps]))


# ---- losses (functions of tensors, usable on their own) ----------------------------------------


def pinball_loss(params: Tensor, y: Tensor, quantiles: tuple[float, ...]) -> Tensor:
    """Mean pinball (quantile) loss of ``params`` (..., Q) at levels ``quantiles`` against
    ``y`` (...): max(q·(y − ŷ_q), (q − 1)·(y − ŷ_q)), averaged over everything."""
    q = torch.tensor(quantiles, dtype=params.dtype, device=params.device)
    diff = y.unsqueeze(-1) - params
    return torch.maximum(q * diff, (q - 1) * diff).mean()


def gaussian_params(params: Tensor) -> tuple[Tensor, Tensor]:
    """(μ, σ) from raw outputs (..., 2): σ = softplus(raw) + MIN_SIGMA."""
    return params[..., 0], F.softplus(params[..., 1]) + MIN_SIGMA


def gaussian_nll(mu: Tensor, sigma: Tensor, y: Tensor) -> Tensor:
    """Mean negative log-likelihood of ``y`` under N(μ, σ²) (with the ½·log 2π constant)."""
    return (torch.log(sigma) + 0.5 * ((y - mu) / sigma) ** 2 + 0.5 * math.log(2 * math.pi)).mean()
