"""Karpathy's char-rnn with rnnkit: train on a text file, then sample and predict.

    python examples/char_rnn.py ../shared/data/tinyshakespeare/input.txt --minutes 5

The same run from the command line:

    rnnkit lm train input.txt --out runs/char-rnn --hidden-size 512 --max-minutes 5
    rnnkit lm sample runs/char-rnn --prime "ROMEO:" --temperature 0.8
"""

import argparse

from rnnkit.models.language_model import LMConfig
from rnnkit.tasks.lm import LMDataConfig, train_language_model
from rnnkit.tasks.text_generator import TextGenerator
from rnnkit.training import TrainConfig

parser = argparse.ArgumentParser()
parser.add_argument("text", help="a UTF-8 text file or a directory of them")
parser.add_argument("--minutes", type=float, default=5.0)
parser.add_argument("--out", default="runs/char-rnn")
args = parser.parse_args()

result = train_language_model(
    args.text,
    args.out,
    LMConfig(cell="lstm", hidden_size=512, num_layers=2, embedding_size=64, dropout=0.25),
    LMDataConfig(level="char", seq_length=128, batch_size=64),
    TrainConfig(lr=2e-3, max_minutes=args.minutes, eval_every=250, epochs=1000),
    overwrite=True,  # the example's run directory: each run starts it afresh
)
print(f"validation loss {result.last_val_loss:.3f} nats/char after {result.steps} steps")

gen = TextGenerator.load(args.out)
print("".join(gen.sample("\n", 500, temperature=0.8, seed=0)))
print(gen.predict("To be or not to b", top=3))
