"""Each model type's ONNX graphs: what is traced, its inputs and outputs, its dynamic axes.

A graph's module takes the inputs in the order they are named. Where a model's own forward
does something a trace would freeze (a Python ``int`` read from a tensor, ``torch.unique``),
the module traces a path written for tracing and otherwise calls the model's own method, so
that :func:`rnnkit.export.tracing.compare` checks the file against the model as it is used.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.data.tag_encoding import PAD_ID
from rnnkit.export.tracing import OnnxGraph, register_exporter


def _tracing() -> bool:
    return torch.jit.is_tracing()


def _lengths(batch: int, steps: int) -> Tensor:
    """(batch,) random lengths in 1..steps, the longest row filling the batch."""
    lengths = torch.randint(1, steps + 1, (batch,))
    lengths[torch.randint(batch, ())] = steps
    return lengths


class _LanguageModelStep(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.lstm = model.config.cell == "lstm"

    def forward(self, tokens: Tensor, h: Tensor, c: Tensor | None = None):
        logits, state = self.model(tokens, (h, c) if self.lstm else h)
        return (logits, *state) if self.lstm else (logits, state)


@register_exporter("language_model")
def language_model_graphs(model: nn.Module) -> list[OnnxGraph]:
    """One step (or a few) with the recurrent state in and out; batch and steps dynamic."""
    c = model.config
    L, N, V = c.num_layers, c.hidden_size, c.vocab_size
    lstm = c.cell == "lstm"
    names = ["h", "c"] if lstm else ["h"]

    def sample(batch: int, steps: int) -> tuple[Tensor, ...]:
        tokens = torch.randint(V, (batch, steps))
        return (tokens, *(0.5 * torch.randn(L, batch, N) for _ in names))

    state = f"({L}, batch, {N}) float32"
    inputs = {"tokens": "(batch, steps) int64 token ids (vocab.json itos); steps = 1 for a step"}
    inputs.update({n: f"{state}, {n} before the tokens (zeros to start)" for n in names})
    outputs = {"logits": f"(batch, steps, {V}) float32 scores of the next token"}
    outputs.update({f"{n}_out": f"{state}, {n} after the tokens" for n in names})
    axes = {"tokens": {0: "batch", 1: "steps"}, "logits": {0: "batch", 1: "steps"}}
    axes.update({n: {1: "batch"} for n in [*names, *(f"{n}_out" for n in names)]})
    return [OnnxGraph(_LanguageModelStep(model), sample, inputs, outputs, axes)]


@register_exporter("sequence_classifier")
def sequence_classifier_graphs(model: nn.Module) -> list[OnnxGraph]:
    """Padded batches with their lengths → class scores; batch and steps dynamic."""
    c = model.config
    tokens = c.input_kind == "tokens"

    def sample(batch: int, steps: int) -> tuple[Tensor, Tensor]:
        lengths = _lengths(batch, steps)
        if tokens:
            x = torch.randint(c.vocab_size, (batch, steps))
        else:
            x = torch.randn(batch, steps, c.input_channels)
        return x, lengths

    what = (
        "(batch, steps) int64 token ids (vocab.json itos), padded with pad_id"
        if tokens
        else f"(batch, steps, {c.input_channels}) float32 series, padded"
    )
    inputs = {"inputs": what, "lengths": "(batch,) int64 real steps of each row, 1..steps"}
    outputs = {"logits": f"(batch, {c.num_classes}) float32 class scores (labels.json labels)"}
    axes = {"inputs": {0: "batch", 1: "steps"}, "lengths": {0: "batch"}, "logits": {0: "batch"}}
    return [OnnxGraph(model, sample, inputs, outputs, axes)]


class _TaggerEmissions(nn.Module):
    """Emissions of padded sentences (and the CRF's transition scores, which need no input)."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs: Tensor):
        x = dict(zip(self.names, inputs, strict=True))
        m = self.model
        if _tracing():
            emissions = self._traceable(**x)
        else:
            emissions = m(x["words"], x.get("chars"), x["lengths"], x.get("casing"))
        if getattr(m, "crf", None) is None:
            return emissions
        return (emissions, *m.crf.transition_scores())

    def _traceable(self, words, lengths, chars=None, casing=None) -> Tensor:
        """The tagger's forward with every word's characters encoded (padding words too, then
        zeroed), where the model encodes each distinct real word once."""
        m, c = self.model, self.model.config
        B, T = words.shape
        mask = torch.arange(T)[None, :] < lengths[:, None]
        parts = [m.embed(words)]
        if chars is not None:
            W = chars.shape[2]
            flat = chars.reshape(B * T, W)
            real_chars = (flat != PAD_ID).sum(1).clamp(min=1)
            e = m.char_embed(flat)
            if c.char_encoder == "lstm":
                # The final states, read from the outputs (the exporter fails on a packed
                # LSTM whose outputs go unused): h→ at the last char, h← at the first.
                outputs, _ = m.char_rnn(e, lengths=real_chars)
                C = outputs.shape[-1] // 2
                last = (real_chars - 1)[:, None, None].expand(-1, 1, C)
                forward = outputs[..., :C].gather(1, last)[:, 0]
                encoded = torch.cat([forward, outputs[:, 0, C:]], dim=-1)
            else:
                conv = m.char_conv(e.transpose(1, 2))[:, :, :W]
                real = torch.arange(W)[None, :] < real_chars[:, None]
                encoded = conv.masked_fill(~real[:, None, :], float("-inf")).amax(dim=2)
            encoded = encoded.reshape(B, T, -1)
            parts.append(torch.where(mask[..., None], encoded, torch.zeros_like(encoded)))
        if casing is not None:
            parts.append(m.casing_embed(casing))
        outputs, _ = m.rnn(m.drop(torch.cat(parts, dim=-1)), lengths=lengths)
        return m.head(m.drop(outputs))


@register_exporter("tagger")
def tagger_graphs(model: nn.Module) -> list[OnnxGraph]:
    """Padded sentences → emissions (batch, steps, K); with a CRF its transition scores too,
    forbidden transitions (the tag scheme's) at -10,000."""
    c = model.config
    K, chars, casing = len(c.tags), c.char_encoder != "none", bool(c.casing_size)

    def sample(batch: int, steps: int) -> tuple[Tensor, ...]:
        lengths = _lengths(batch, steps)
        out = [torch.randint(c.vocab_size, (batch, steps)), lengths]
        if chars:
            out.append(torch.randint(1, c.char_vocab_size, (batch, steps, steps + 2)))
        if casing:
            out.append(torch.randint(1, 8, (batch, steps)))
        return tuple(out)

    inputs = {
        "words": "(batch, steps) int64 word ids (vocab.json), 0 (<pad>) on padding",
        "lengths": "(batch,) int64 words per sentence, 1..steps",
    }
    axes = {"words": {0: "batch", 1: "steps"}, "lengths": {0: "batch"}}
    if chars:
        inputs["chars"] = "(batch, steps, chars) int64 char ids of each word, 0-padded"
        axes["chars"] = {0: "batch", 1: "steps", 2: "chars"}
    if casing:
        inputs["casing"] = "(batch, steps) int64 casing ids (rnnkit.data.tag_encoding.CASINGS)"
        axes["casing"] = {0: "batch", 1: "steps"}
    outputs = {"emissions": f"(batch, steps, {K}) float32 score of each tag (tags.json)"}
    axes["emissions"] = {0: "batch", 1: "steps"}
    if c.output == "crf":
        outputs.update(
            start_transitions=f"({K},) float32 score of starting a sentence with each tag",
            transitions=f"({K}, {K}) float32 score of tag i followed by tag j",
            end_transitions=f"({K},) float32 score of ending a sentence with each tag",
        )
    module = _TaggerEmissions(model, list(inputs))
    return [OnnxGraph(module, sample, inputs, outputs, axes, scores=("emissions",))]


def _seq2seq_state_names(model: nn.Module) -> tuple[list[str], list[str]]:
    """The decoder state's names (h, c, feed) and the memory's, as the graphs carry them."""
    c = model.config
    state = ["h"] + (["c"] if c.cell == "lstm" else []) + (["feed"] if model.feeding else [])
    memory = ["values"] + (["keys", "projected"] if model.attn is not None else [])
    return state, [*memory, "mask", "context"]


class _Seq2SeqEncoder(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.state, self.memory = _seq2seq_state_names(model)

    def forward(self, source: Tensor, lengths: Tensor):
        s = self.model.encode(source, lengths)
        m = s.memory
        found = {"h": s.h, "c": s.c, "feed": s.feed, "values": m.values, "mask": m.mask}
        if m.keys is not None:
            found.update(keys=m.keys.keys, projected=m.keys.projected)
        found["context"] = m.context
        return tuple(found[n] for n in [*self.state, *self.memory])


class _Seq2SeqDecoderStep(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.state, self.memory = _seq2seq_state_names(model)

    def forward(self, tokens: Tensor, *rest: Tensor):
        from rnnkit.models.seq2seq import DecoderState, Memory
        from rnnkit.nn.attention import PrecomputedKeys

        x = dict(zip([*self.state, *self.memory], rest, strict=True))
        keys = PrecomputedKeys(x["keys"], x["projected"]) if "keys" in x else None
        memory = Memory(x["values"], keys, x["mask"], x["context"])
        state = DecoderState(x["h"], x.get("c"), x.get("feed"), memory)
        log_probs, new, alpha = self.model.decode_step(tokens, state)
        found = {"h": new.h, "c": new.c, "feed": new.feed}
        out = (log_probs, *(found[n] for n in self.state))
        return out if alpha is None else (*out, alpha)


@register_exporter("seq2seq")
def seq2seq_graphs(model: nn.Module) -> list[OnnxGraph]:
    """``encoder``: source and lengths → the decoder's first state and the memory;
    ``decoder``: one step, the previous tokens (``<bos>`` first), state and memory → the next
    token's log-probabilities, the new state (and the attention)."""
    c = model.config
    L, N, V = c.num_layers, c.hidden_size, c.target_vocab_size
    K = N * (2 if c.bidirectional else 1)
    state, memory = _seq2seq_state_names(model)
    encoder, decoder = _Seq2SeqEncoder(model), _Seq2SeqDecoderStep(model)

    def source_sample(batch: int, steps: int) -> tuple[Tensor, Tensor]:
        return torch.randint(c.source_vocab_size, (batch, steps)), _lengths(batch, steps)

    def step_sample(batch: int, steps: int) -> tuple[Tensor, ...]:
        with torch.no_grad():
            encoded = encoder(*source_sample(batch, steps))
        return (torch.randint(V, (batch,)), *encoded)

    what = {
        "h": f"({L}, batch, {N}) float32 decoder hidden state",
        "c": f"({L}, batch, {N}) float32 decoder cell state",
        "feed": f"(batch, {N}) float32 the previous attentional vector (input feeding)",
        "values": f"(batch, source_steps, {K}) float32 encoder outputs",
        "keys": "(batch, source_steps, ·) float32 attention keys",
        "projected": "(batch, source_steps, ·) float32 attention keys, projected once",
        "mask": "(batch, source_steps) bool, true on real source tokens",
        "context": f"(batch, {K}) float32 the encoder's final state (the context vector)",
    }
    where = {"h": 1, "c": 1, "feed": 0, "context": 0}
    per_row = {n: {where.get(n, 0): "batch"} for n in what}
    for n in ("values", "keys", "projected", "mask"):
        per_row[n] = {0: "batch", 1: "source_steps"}
    enc_in = {
        "source": "(batch, source_steps) int64 ids (vocab.json source itos), <pad>-padded",
        "lengths": "(batch,) int64 real tokens of each row, 1..source_steps",
    }
    enc_out = {n: what[n] for n in [*state, *memory]}
    enc_axes = {"source": {0: "batch", 1: "source_steps"}, "lengths": {0: "batch"}}
    enc_axes.update({n: per_row[n] for n in enc_out})
    dec_in = {"tokens": "(batch,) int64 previous target ids (vocab.json target; <bos> first)"}
    dec_in.update({n: what[n] for n in [*state, *memory]})
    dec_out = {"log_probs": f"(batch, {V}) float32 log-probabilities of the next token"}
    dec_out.update({f"{n}_out": what[n] + ", after the step" for n in state})
    if model.attn is not None:
        dec_out["attention"] = "(batch, source_steps) float32 attention weights of the step"
    dec_axes = {"tokens": {0: "batch"}, "log_probs": {0: "batch"}}
    dec_axes.update({n: per_row[n] for n in [*state, *memory]})
    dec_axes.update({f"{n}_out": per_row[n] for n in state})
    dec_axes["attention"] = {0: "batch", 1: "source_steps"}
    return [
        OnnxGraph(encoder, source_sample, enc_in, enc_out, enc_axes, "encoder", scores=()),
        OnnxGraph(decoder, step_sample, dec_in, dec_out, dec_axes, "decoder", ("log_probs",)),
    ]


class _Forecast(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, history: Tensor, future: Tensor | None = None):
        f = self.model.forecast(history, future)
        return f.point if f.lower is None else (f.point, f.lower, f.upper)


@register_exporter("forecaster")
def forecaster_graphs(model: nn.Module) -> list[OnnxGraph]:
    """History (and the horizon's future covariates) → the ensemble's forecast (and bounds),
    in the space the model was trained in: forecast.json's ``transform`` holds the scaler
    (and the log and differencing) to apply to the inputs and invert on the outputs."""
    c = model.config
    C, H, T = model.n_columns, c.horizon, c.n_targets

    def sample(batch: int, steps: int) -> tuple[Tensor, ...]:
        history = torch.randn(batch, c.lookback + steps - 3, C)
        return (history, torch.randn(batch, H, c.n_future)) if c.n_future else (history,)

    rows = "float32 rows (targets, past, future covariates) transformed (forecast.json)"
    inputs = {"history": f"(batch, steps, {C}) {rows}"}
    axes = {"history": {0: "batch", 1: "steps"}}
    if c.n_future:
        inputs["future"] = f"(batch, {H}, {c.n_future}) float32 the horizon's future covariates"
        axes["future"] = {0: "batch"}
    outputs = {"point": f"(batch, {H}, {T}) float32 the forecast, transformed (forecast.json)"}
    if c.has_interval:
        outputs["lower"] = f"(batch, {H}, {T}) float32 lower bound of the interval, transformed"
        outputs["upper"] = f"(batch, {H}, {T}) float32 upper bound of the interval, transformed"
    axes.update({n: {0: "batch"} for n in outputs})
    return [OnnxGraph(_Forecast(model), sample, inputs, outputs, axes, scores=())]


class _SpeechScores(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: Tensor, lengths: Tensor):
        m = self.model
        if not _tracing():
            return m(features, lengths)
        # The model's forward trims to the longest row with a Python int; here every row is
        # kept (ceil(frames / s) steps) and the rows' own lengths mark the padding.
        x = m._subsample(features)
        out_lengths = m.out_lengths(lengths)
        outputs, _ = m.rnn(m.drop(x), lengths=out_lengths)
        return m.head(m.drop(outputs)), out_lengths


@register_exporter("ctc_speech")
def speech_graphs(model: nn.Module) -> list[OnnxGraph]:
    """Spectral frames with their lengths → CTC scores per recurrent step and those steps."""
    c = model.config
    F, labels = c.num_features, c.num_labels

    def sample(batch: int, steps: int) -> tuple[Tensor, Tensor]:
        frames = 4 * steps + 1  # not a multiple of the subsampling
        return torch.randn(batch, frames, F), _lengths(batch, frames)

    inputs = {
        "features": f"(batch, frames, {F}) float32 feature vectors (data.json: how made)",
        "lengths": "(batch,) int64 real frames of each utterance, 1..frames",
    }
    outputs = {
        "logits": f"(batch, steps, {labels}) float32 scores: blank (id 0), then the alphabet "
        f"(rnnkit.model_config); steps = ceil(frames / {c.factor})",
        "out_lengths": "(batch,) int64 real steps of each utterance",
    }
    axes = {
        "features": {0: "batch", 1: "frames"},
        "lengths": {0: "batch"},
        "logits": {0: "batch", 1: "steps"},
        "out_lengths": {0: "batch"},
    }
    return [OnnxGraph(_SpeechScores(model), sample, inputs, outputs, axes)]
