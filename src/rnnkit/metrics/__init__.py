"""Task metrics that models, tasks and trainers share.

spans: entity-level precision/recall/F1 of tag sequences (conlleval's counting):
    scores = span_scores(gold, pred); scores["f1"], scores["per_type"]["PER"]
forecast: MAE, RMSE, MAPE, sMAPE, MASE, interval coverage; backtest: rolling-origin evaluation
(import those from rnnkit.metrics.forecast and rnnkit.metrics.backtest).
"""

from rnnkit.metrics.spans import (
    Counts,
    SpanCounter,
    add_counts,
    scores_from_counts,
    span_counts,
    span_scores,
    token_counts,
)

__all__ = [
    "Counts",
    "SpanCounter",
    "add_counts",
    "scores_from_counts",
    "span_counts",
    "span_scores",
    "token_counts",
]
