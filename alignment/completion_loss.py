"""SFT whose language-model head scores only the answer tokens, on every device.

TRL's fused LM head projects only the positions that carry a label where Triton runs (CUDA, XPU); on
any other device it projects *every* position through the head, to keep tile shapes fixed for
compilers. For a small model with a large vocabulary that is most of a CPU step: Gemma 3 270M has
100M parameters in its layers and 168M in its 262k × 640 head, so scoring all 1,024 positions of a
prompt to train a 20-token answer multiplies a step's work by about 3
(``benchmarks/train_step_cpu.py`` measures it). Here the model is asked for the logits of the labelled
positions only (``logits_to_keep``, which every current transformers causal LM takes) and the loss is
the same token-mean cross-entropy TRL computes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def labelled_positions(labels: Any) -> Any:
    """Indices ``t`` whose logits predict a trained token (``labels[:, t + 1] != -100`` in any row)."""
    return (labels[:, 1:] != -100).any(dim=0).nonzero().squeeze(-1)


def completion_loss(
    model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None
) -> tuple[Any, dict[str, Any]]:
    """
    Cross-entropy over the labelled tokens only, and the statistics TRL logs for them.

    Returns ``(loss, stats)`` where ``stats`` holds ``tokens`` (labelled tokens in this batch),
    ``entropy_sum`` and ``correct`` (tokens whose top-1 prediction was right), all detached.
    """
    import torch  # heavy

    labels = inputs["labels"]
    keep = labelled_positions(labels)
    forward = {key: value for key, value in inputs.items() if key != "labels"}
    outputs = model(**forward, use_cache=False, logits_to_keep=keep)
    logits = outputs.logits.float()  # (batch, kept, vocab): a few dozen positions, not the whole prompt
    targets = labels[:, 1:][:, keep]
    valid = targets != -100
    log_probs = torch.log_softmax(logits, dim=-1)
    picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    denominator = valid.sum() if num_items_in_batch is None else num_items_in_batch
    loss = -(picked * valid).sum() / torch.as_tensor(denominator, device=picked.device).clamp(min=1)
    with torch.no_grad():
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        stats = {
            "tokens": valid.sum(),
            "entropy_sum": (entropy * valid).sum(),
            "correct": ((logits.argmax(-1) == targets) & valid).sum(),
        }
    return loss, stats


def completion_sft_trainer_class() -> type:
    """``trl.SFTTrainer`` with :func:`completion_loss` wherever TRL's own head would score every position."""
    from trl import SFTTrainer  # heavy

    class CompletionSFTTrainer(SFTTrainer):  # type: ignore[misc, valid-type]
        """SFTTrainer that scores only the labelled positions on devices without Triton kernels."""

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            plain = (
                self.compute_loss_func is None
                and self.label_smoother is None
                and getattr(self.args, "loss_type", "nll") == "nll"  # DFT and others: TRL's own loss
            )
            on_triton = self.accelerator.device.type in ("cuda", "xpu")
            if on_triton or not plain or return_outputs or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            mode = "train" if self.model.training else "eval"
            loss, stats = completion_loss(model, inputs, num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            gather = self.accelerator.gather_for_metrics
            tokens = gather(stats["tokens"]).sum()
            metrics = self._metrics[mode]
            metrics["entropy"].append((gather(stats["entropy_sum"]).sum() / tokens).item() if tokens else 0.0)
            metrics["mean_token_accuracy"].append(
                (gather(stats["correct"]).sum() / tokens).item() if tokens else 0.0
            )
            if mode == "train" and "attention_mask" in inputs:
                seen = gather(inputs["attention_mask"].sum()).sum().item()
                self._total_train_tokens += int(seen)
            metrics["num_tokens"] = [self._total_train_tokens]
            return loss

    CompletionSFTTrainer.__module__ = __name__
    return CompletionSFTTrainer


@contextmanager
def compact_fused_head(device_type: str) -> Iterator[None]:
    """
    TRL's fused LM head (DPO, KTO) scoring only the labelled positions on a device without Triton.

    TRL decides "score only the positions with a label" by asking whether Triton runs on the device;
    off CUDA/XPU it scores every position so that a compiler sees fixed tile shapes. tanya does not
    compile, so the answer-only path is exact and far cheaper: a 1,024-token DPO pair of Gemma 3
    270M projects ~40 positions through its 262k-word head instead of ~2,000. Only that decision is
    changed, in `trl.trainer.utils`; the kernels keep their own device check and run their torch
    fallback. A TRL without the hook trains as before.
    """
    import trl.trainer.utils as trl_utils  # heavy

    original = getattr(trl_utils, "_use_triton", None)
    if original is None or device_type in ("cuda", "xpu"):
        yield
        return
    trl_utils._use_triton = lambda device: True
    try:
        yield
    finally:
        trl_utils._use_triton = original
