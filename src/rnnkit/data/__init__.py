"""Data for language models: vocabularies, corpora → memory-mapped token files, batches.

vocab = build_vocab("input.txt", "char")                  # streaming count pass
vocab, train, val = prepare_corpus("input.txt", "char", "runs/x/data", val_fraction=0.1)
batches = StreamBatches(train, batch_size=50, seq_length=50)
x, y = batches.batch(epoch=0, index=0)                    # LongTensor (B, T) each
"""

from rnnkit.data.batching import (
    BatchSource,
    StreamBatches,
    WindowBatches,
    eval_batches,
    fit_batch_size,
)
from rnnkit.data.corpus import (
    CHUNK_SIZE,
    TokenFile,
    build_vocab,
    corpus_files,
    count_tokens,
    encode_corpus,
    prepare_corpus,
    read_text,
    token_dtype,
)
from rnnkit.data.vocab import EOS, UNK, Vocab, tokenize

__all__ = [
    "BatchSource",
    "CHUNK_SIZE",
    "EOS",
    "StreamBatches",
    "TokenFile",
    "UNK",
    "Vocab",
    "WindowBatches",
    "build_vocab",
    "corpus_files",
    "count_tokens",
    "encode_corpus",
    "eval_batches",
    "fit_batch_size",
    "prepare_corpus",
    "read_text",
    "token_dtype",
    "tokenize",
]
