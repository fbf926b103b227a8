"""One file per sequence topology; each model implements ``compute_loss`` for the Trainer."""
