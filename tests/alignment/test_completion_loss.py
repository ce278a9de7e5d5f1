"""The answer-only LM head: the same loss and gradients as scoring every position, from far fewer rows.

A tiny random-weight Gemma 3 (the bundled multilingual model's architecture, with its final-logit
soft-capping) built from a config, so nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

import pytest

from alignment.completion_loss import completion_loss, labelled_positions

torch = pytest.importorskip("torch")


def _tiny_gemma3() -> Any:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=512,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=8,
        final_logit_softcapping=30.0,
    )
    return Gemma3ForCausalLM(config).eval()


def _batch() -> dict[str, Any]:
    """Two rows of different lengths (the second right-padded), each with a short answer at its end."""
    ids = torch.randint(5, 500, (2, 24))
    attention = torch.ones_like(ids)
    attention[1, 18:] = 0
    labels = torch.full_like(ids, -100)
    labels[0, 19:24] = ids[0, 19:24]
    labels[1, 14:18] = ids[1, 14:18]
    return {"input_ids": ids, "attention_mask": attention, "labels": labels}


def _full_logits_loss(model: Any, batch: dict[str, Any]) -> Any:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1), ignore_index=-100
    )


def test_positions_kept_are_those_that_predict_an_answer_token() -> None:
    labels = torch.full((2, 10), -100)
    labels[0, 7:] = 1
    labels[1, 4:6] = 1
    assert labelled_positions(labels).tolist() == [3, 4, 6, 7, 8]


def test_loss_and_gradients_match_scoring_every_position() -> None:
    model = _tiny_gemma3()
    batch = _batch()
    reference = _full_logits_loss(model, batch)
    reference.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    loss, stats = completion_loss(model, batch)
    loss.backward()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    assert stats["tokens"].item() == 9
    assert 0 <= stats["correct"].item() <= 9 and stats["entropy_sum"].item() > 0
    for name, parameter in model.named_parameters():
        assert torch.allclose(parameter.grad, expected[name], atol=1e-6), name


def test_the_head_projects_only_the_answer_positions() -> None:
    model = _tiny_gemma3()
    rows: list[int] = []
    model.lm_head.register_forward_hook(lambda _m, args, _out: rows.append(args[0].shape[1]))
    completion_loss(model, _batch())
    assert rows == [9]  # of 24 positions: the 5 + 4 that predict an answer token


def test_a_token_count_from_the_whole_accumulated_batch_divides_the_sum() -> None:
    model = _tiny_gemma3()
    batch = _batch()
    mean, _ = completion_loss(model, batch)
    summed_over_18, _ = completion_loss(model, batch, num_items_in_batch=18)
    assert summed_over_18.item() == pytest.approx(mean.item() * 9 / 18, rel=1e-5)


@pytest.mark.parametrize("outputs", [("log_probs",), ("log_probs", "entropy", "mean_logits", "is_top1")])
def test_trls_fused_head_compacted_on_the_cpu_gives_the_same_log_probs(outputs: tuple[str, ...]) -> None:
    """DPO and KTO go through TRL's fused head; answer-only scoring must not change what it returns."""
    import trl.trainer.utils as trl_utils
    from trl.trainer.utils import add_fused_lm_head

    from alignment.completion_loss import compact_fused_head

    model = _tiny_gemma3()
    add_fused_lm_head(model, outputs=outputs)
    batch = _batch()

    def run() -> Any:
        return model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            labels=batch["labels"],
            fused_lm_head=True,
        )

    def gradients(output: Any) -> list[Any]:
        model.zero_grad()
        output.loss.backward(retain_graph=True)
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    everywhere = run()
    full_gradients = gradients(everywhere)
    with compact_fused_head("cpu"):
        assert trl_utils._use_triton(torch.device("cpu")) is True
        compacted = run()
        compact_gradients = gradients(compacted)
    assert len(compact_gradients) == len(full_gradients) > 0
    for ours, theirs in zip(compact_gradients, full_gradients, strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    assert trl_utils._use_triton(torch.device("cpu")) is False  # restored
    for name in outputs:
        torch.testing.assert_close(getattr(compacted, name), getattr(everywhere, name), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(compacted.loss, everywhere.loss)
    with compact_fused_head("cuda"):  # where TRL compacts already, nothing is changed
        assert trl_utils._use_triton(torch.device("cpu")) is False
