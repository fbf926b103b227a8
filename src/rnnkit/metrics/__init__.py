"""Task metrics that models, tasks and trainers share: plain Python over tag lists.

scores = span_scores(gold, pred)           # lists of tag sequences, one per sentence
scores["f1"], scores["per_type"]["PER"]    # fractions in [0, 1], conlleval's counting
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
