"""Where a run reports: a tqdm bar, ``log.csv``, TensorBoard (if installed), ``loss_curve.png``.

Every row has the columns :data:`COLUMNS` plus one per metric the model reports
(``train_accuracy``, ``val_f1``, ...), added the first time it appears (the CSV is then
rewritten with the wider header); a cell that does not apply is empty (a row written at a
validation that is not also a log step has no train_loss). Rows also go to the
``rnnkit.training`` logger at INFO level, rounded for reading.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

COLUMNS = ("step", "epoch", "train_loss", "val_loss", "lr", "tokens_per_s", "elapsed")
CSV_NAME = "log.csv"
PNG_NAME = "loss_curve.png"
TENSORBOARD_DIR = "tensorboard"

logger = logging.getLogger("rnnkit.training")


def read_log(path: Path, up_to_step: int | None = None) -> list[dict[str, Any]]:
    """Rows of a ``log.csv`` (numbers parsed, empty cells None), keeping steps ≤ up_to_step."""
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = list(COLUMNS) + [c for c in reader.fieldnames or () if c not in COLUMNS]
        for raw in reader:
            try:
                row = {k: _parse(k, raw.get(k, "")) for k in columns}
            except ValueError:  # a line cut short by a crash
                continue
            if row["step"] is None or (up_to_step is not None and row["step"] > up_to_step):
                continue
            rows.append(row)
    return rows


def _parse(key: str, text: str | None) -> Any:
    if text is None or text == "":
        return None
    return int(text) if key == "step" else float(text)


def _format(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)  # repr: round-trips exactly


def _short(value: Any) -> str:
    """For people: 5 significant digits (the CSV keeps every digit)."""
    return f"{value:.5g}" if isinstance(value, float) else str(value)


class RunLog:
    """The reporting side of one ``fit`` call.

    On resume (``start_step`` > 0) the CSV keeps the rows up to the checkpoint's step, so rows a
    killed run wrote after its last checkpoint do not appear twice.
    """

    def __init__(
        self,
        out_dir: Path | None,
        *,
        progress: bool,
        tensorboard: bool,
        total_steps: int | None,
        start_step: int,
        time_budget: float = 0.0,
        start_elapsed: float = 0.0,
    ) -> None:
        self.out_dir = out_dir
        self.csv_path = out_dir / CSV_NAME if out_dir is not None else None
        self.history: list[dict[str, Any]] = []
        self.columns = list(COLUMNS)
        if self.csv_path is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            if start_step > 0:
                self.history = read_log(self.csv_path, up_to_step=start_step)
                for row in self.history:
                    self.columns += [k for k in row if k not in self.columns]
            self._rewrite_csv()
        # When a time budget bounds the run the bar counts seconds: a step count would be a
        # guess (a 6-second budget once showed 68,000 steps and an ETA of 4 minutes).
        self.timed = time_budget > 0
        if self.timed:
            self.bar = tqdm(
                total=round(time_budget),
                initial=round(start_elapsed),
                unit="s",
                dynamic_ncols=True,
                disable=not progress,
                bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt}s [{postfix}]",
            )
        else:
            self.bar = tqdm(
                total=total_steps,
                initial=start_step,
                unit="step",
                dynamic_ncols=True,
                disable=not progress,
            )
        self.tb = None
        if tensorboard and out_dir is not None:
            self.tb = _summary_writer(out_dir / TENSORBOARD_DIR, purge_step=start_step or None)

    def step(self, elapsed: float = 0.0) -> None:
        """One optimizer step done, ``elapsed`` seconds into the run (cheap: tqdm redraws at
        most ~10 times a second)."""
        if self.timed:
            self.bar.update(min(elapsed, self.bar.total) - self.bar.n)
        else:
            self.bar.update(1)

    def _rewrite_csv(self) -> None:
        with open(self.csv_path, "w", newline="", encoding="utf-8") as f:  # type: ignore[arg-type]
            writer = csv.writer(f)
            writer.writerow(self.columns)
            writer.writerows([[_format(r.get(k)) for k in self.columns] for r in self.history])

    def write(self, row: dict[str, Any]) -> None:
        """Append a row (keys from :data:`COLUMNS` and metric names) to every output."""
        new = [k for k in row if k not in self.columns]
        self.columns += new
        row = {k: row.get(k) for k in self.columns}
        self.history.append(row)
        if self.csv_path is not None:
            if new:  # a metric seen for the first time: the header grows
                self._rewrite_csv()
            else:
                with open(self.csv_path, "a", newline="", encoding="utf-8") as f:
                    csv.writer(f).writerow([_format(row[k]) for k in self.columns])
        if self.tb is not None:
            for key, value in row.items():
                if key not in ("step", "epoch", "elapsed") and value is not None:
                    self.tb.add_scalar(key, value, row["step"])
        postfix = {}
        for key, value in row.items():
            if value is None or key in ("step", "epoch", "elapsed", "tokens_per_s"):
                continue
            name = {"train_loss": "loss", "val_loss": "val"}.get(key, key)
            postfix[name.replace("train_", "")] = f"{value:.4g}"
        if row.get("tokens_per_s") is not None:
            postfix["tok/s"] = f"{row['tokens_per_s']:.0f}"
        self.bar.set_postfix(postfix, refresh=False)
        logger.info(" ".join(f"{k}={_short(v)}" for k, v in row.items() if v is not None))

    def message(self, text: str) -> None:
        """A line for the user, printed above the bar (or logged when there is no bar)."""
        if self.bar.disable:
            logger.warning(text)
        else:
            self.bar.write(text)

    def close(self) -> Path | None:
        """Close the bar and TensorBoard; draw the loss curve. Returns the PNG path if drawn."""
        self.bar.close()
        if self.tb is not None:
            self.tb.close()
        if self.out_dir is None:
            return None
        return plot_loss_curve(self.history, self.out_dir / PNG_NAME)


def _summary_writer(path: Path, purge_step: int | None) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional and not a dependency
        logger.warning("tensorboard=True but the tensorboard package is not installed: skipped")
        return None
    return SummaryWriter(str(path), purge_step=purge_step)


def plot_loss_curve(history: list[dict[str, Any]], path: Path) -> Path | None:
    """Train and validation loss against steps, as a PNG (None when matplotlib is missing)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None

    def series(key: str) -> tuple[list[int], list[float]]:
        pts = [
            (r["step"], r[key]) for r in history if r.get(key) is not None and math.isfinite(r[key])
        ]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig = Figure(figsize=(7, 4), layout="tight")  # no pyplot: no global backend, no GUI
    ax = fig.subplots()
    for key, style, label in (("train_loss", "-", "train"), ("val_loss", "o-", "validation")):
        xs, ys = series(key)
        if xs:
            ax.plot(xs, ys, style, label=label, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss per token")
    ax.grid(alpha=0.3)
    if ax.has_data():
        ax.legend()
    fig.savefig(path, dpi=100)
    return path
