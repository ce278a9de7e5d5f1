from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from retrieval.search.e5_packed_model import (
    PackedE5Model,
    PackedModelError,
    bundled_model_path,
    dequantise_q4,
)


def test_q4_blocks_dequantise_low_nibbles_first_then_high() -> None:
    block = np.zeros((1, 18), dtype=np.uint8)
    block[0, :2] = np.frombuffer(np.float16(0.5).tobytes(), dtype=np.uint8)
    block[0, 2] = 0x9F  # weight 0: low nibble 15 -> (15-8)*0.5; weight 16: high nibble 9 -> 0.5
    block[0, 3] = 0x08  # weight 1: 8 -> 0; weight 17: 0 -> -4
    values = dequantise_q4(block)[0]
    assert values[0] == 3.5 and values[16] == 0.5
    assert values[1] == 0.0 and values[17] == -4.0
    assert values.dtype == np.float32 and values.shape == (32,)


def test_the_bundled_file_holds_e5_small() -> None:
    packed = PackedE5Model()
    shape = packed.shape
    assert (shape.hidden, shape.layers, shape.heads, shape.intermediate) == (384, 12, 12, 1536)
    assert shape.max_positions == 512
    vocabulary = packed.vocabulary
    assert vocabulary.pieces[vocabulary.bos] == "<s>" and vocabulary.pieces[vocabulary.unk] == "<unk>"
    assert packed.dequantised("l0.fi.w", 1536).shape == (1536, 384)
    rows = packed.word_embeddings(np.array([[5, 6], [7, 8]]))
    assert rows.shape == (2, 2, 384) and np.isfinite(rows).all()
    assert not np.allclose(rows[0, 0], rows[0, 1])


def test_a_file_that_is_not_a_model_is_refused_clearly(tmp_path: Path) -> None:
    wrong = tmp_path / "model.bin"
    wrong.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(PackedModelError, match="not a packed e5 model"):
        PackedE5Model(wrong)
    newer = tmp_path / "newer.bin"
    newer.write_bytes(b"E5S1" + struct.pack("<I", 9) + bytes(64))
    with pytest.raises(PackedModelError, match="version 9"):
        PackedE5Model(newer)


def test_a_truncated_model_is_refused(tmp_path: Path) -> None:
    cut = tmp_path / "cut.bin"
    cut.write_bytes(bundled_model_path().read_bytes()[:5_000_000])
    with pytest.raises(PackedModelError, match="truncated"):
        PackedE5Model(cut)
