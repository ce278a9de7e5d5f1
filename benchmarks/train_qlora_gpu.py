"""QLoRA SFT + DPO on CUDA: tokens/s, peak GPU memory and MFU, tanya's trainer against a plain TRL script.

    .venv/bin/python benchmarks/train_qlora_gpu.py [--size 0.5b|1.5b] [--length 1024] [--batch 8] [--steps 20]

Builds a decoder with the dimensions of a 0.5B or 1.5B model (Llama architecture, the bundled SmolLM2
tokenizer's vocabulary) and random weights, so nothing is downloaded, and trains it twice with the same
LoRA settings (r=16 on all linear layers, 4-bit NF4 base with bf16 compute, gradient checkpointing):

* tanya: ``alignment.model.load_base_model`` + ``alignment.train.train_adapter`` (what ``tanya worker`` runs);
* plain: the QLoRA recipe from TRL's documentation, ``SFTTrainer(peft_config=…)`` then ``DPOTrainer`` on
  its PeftModel with ``ref_model=None``.

Every row is exactly ``--length`` tokens, so a step processes ``batch × length`` tokens (twice that for
DPO's chosen + rejected). The first two steps of each stage are warm-up and not timed. MFU divides the
achieved model FLOP/s by the GPU's dense bf16 peak: a frozen (quantised) weight needs no weight
gradient, so a LoRA training token costs ≈ 4·N FLOPs (forward 2·N, input gradients 2·N), plus 2·N for
DPO's reference forward; attention adds 12·layers·hidden·length per token for training.
Exits with status 2 and a message when CUDA is absent. Writes ``benchmarks/results/train_qlora_gpu.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import write_result

SIZES = {  # hidden, layers, heads, kv heads, intermediate: Qwen2.5-0.5B / -1.5B shapes
    "0.5b": (896, 24, 14, 2, 4864),
    "1.5b": (1536, 28, 12, 2, 8960),
}
PEAK_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}


def _peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((value for key, value in PEAK_BF16_TFLOPS.items() if key in name), None)


def _random_model(size: str, folder: Path) -> tuple[Path, int, Any]:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from retrieval.generation.bundled_models import SMOLLM2

    gguf = SMOLLM2.part_paths()[0]  # a Llama-family tokenizer for the random Llama weights
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    hidden, layers, heads, kv_heads, inter = SIZES[size]
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=inter,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, parameters, config


def _rows(tokenizer: Any, length: int, count: int) -> dict[str, list[dict[str, Any]]]:
    """Rows of exactly ``length`` tokens: a prompt of length-32 random ids and a 32-token answer."""
    import random

    rng = random.Random(0)
    vocab = [i for i in range(len(tokenizer)) if i not in tokenizer.all_special_ids][:30000]

    def text(tokens: int) -> str:
        return tokenizer.decode([rng.choice(vocab) for _ in range(tokens)])

    sft, dpo = [], []
    for _ in range(count):
        prompt = text(length - 32)
        good, bad = text(31) + tokenizer.eos_token, text(31) + tokenizer.eos_token
        sft.append({"prompt": prompt, "completion": good})
        dpo.append({"prompt": prompt, "chosen": good, "rejected": bad})
    return {"sft": sft, "dpo": dpo, "kto": []}


class _Timer:
    """Step-end times per stage, taken when each step's metrics are logged (``logging_steps=1``).

    Logging reads the loss back from the GPU, so these times are after the step's kernels finished. The
    tanya runner gets the same times from its training log, which is written at the same event.
    """

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}

    def add(self, stage: str, moment: float) -> None:
        self.times.setdefault(stage, []).append(moment)

    def callback(self, stage: str) -> Any:
        from transformers import TrainerCallback

        timer = self

        class StepTimes(TrainerCallback):
            def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
                if logs and "loss" in logs:
                    timer.add(stage, time.time())

        return StepTimes()

    def per_step(self, stage: str) -> float:
        times = self.times[stage][1:]  # from the end of step 2: steps 1-2 are warm-up
        return (times[-1] - times[0]) / max(len(times) - 1, 1)


def _stage_numbers(
    stage: str, seconds: float, batch: int, length: int, n: int, config: Any, peak: float | None
) -> dict:
    sequences = batch * (2 if stage == "dpo" else 1)
    tokens_per_s = sequences * length / seconds
    attention = 12 * config.num_hidden_layers * config.hidden_size * length
    flops_per_token = 4 * n + attention + (2 * n if stage == "dpo" else 0)
    achieved = tokens_per_s * flops_per_token
    return {
        "seconds_per_step": round(seconds, 4),
        "tokens_per_s": round(tokens_per_s, 1),
        "flops_per_token": flops_per_token,
        "mfu": round(achieved / (peak * 1e12), 4) if peak else None,
    }


def run_tanya(model_dir: Path, rows: dict, args: argparse.Namespace, timer: _Timer) -> None:
    from alignment.config import AlignmentConfig
    from alignment.datasets import SplitRows
    from alignment.model import load_base_model, resolve_config
    from alignment.progress import RunMonitor, TrainingLog
    from alignment.train import StagePlan, train_adapter

    config = resolve_config(
        AlignmentConfig(
            device="cuda",
            batch_size=args.batch,
            max_length=args.length,
            lora_r=16,
            sft_max_steps=args.steps,
            preference_max_steps=args.steps,
        ),
        model_dir,
    )
    loaded = load_base_model(model_dir, config)
    plan = StagePlan(sft=True, dpo=True, kto=False, kto_rows="", reason="benchmark")
    log = TrainingLog(None)
    with tempfile.TemporaryDirectory() as out, RunMonitor(log, show=False) as monitor:
        train_adapter(loaded, SplitRows(**rows), config, plan, Path(out) / "adapter", monitor)
    for stage in ("sft", "dpo"):
        for record in log.stage(stage):
            if "loss" in record:
                timer.add(stage, record["time"])


def run_plain(model_dir: Path, rows: dict, args: argparse.Namespace, timer: _Timer) -> None:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        dtype=torch.bfloat16,
        quantization_config=BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        ),
    )
    common = {
        "per_device_train_batch_size": args.batch,
        "max_steps": args.steps,
        "max_length": args.length,
        "bf16": True,
        "gradient_checkpointing": True,
        "logging_steps": 1,
        "report_to": [],
        "save_strategy": "no",
    }
    with tempfile.TemporaryDirectory() as out:
        sft = SFTTrainer(
            model=model,
            args=SFTConfig(output_dir=out, learning_rate=1e-4, **common),
            train_dataset=Dataset.from_list(rows["sft"]),
            processing_class=tokenizer,
            peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"),
            callbacks=[timer.callback("sft")],
        )
        sft.train()
        dpo = DPOTrainer(
            model=sft.model,
            ref_model=None,
            args=DPOConfig(output_dir=out, learning_rate=1e-5, **common),
            train_dataset=Dataset.from_list(rows["dpo"]),
            processing_class=tokenizer,
            callbacks=[timer.callback("dpo")],
        )
        dpo.train()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="0.5b")
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--peak-tflops", type=float, help="dense bf16 peak of the GPU, if not in the built-in table"
    )
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(
            "train_qlora_gpu: no CUDA device here; QLoRA needs an NVIDIA GPU. Nothing was measured.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        print("train_qlora_gpu: bitsandbytes is not installed (pip install 'tanya[gpu]').", file=sys.stderr)
        raise SystemExit(2) from None

    device = torch.cuda.get_device_name(0)
    peak = _peak_tflops(device, args.peak_tflops)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        model_dir, parameters, config = _random_model(args.size, Path(folder))
        from transformers import AutoTokenizer

        rows = _rows(AutoTokenizer.from_pretrained(model_dir), args.length, args.batch * args.steps)
        for name, runner in (("tanya", run_tanya), ("plain_trl", run_plain)):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            timer = _Timer()
            runner(model_dir, rows, args, timer)
            results[name] = {
                stage: _stage_numbers(
                    stage, timer.per_step(stage), args.batch, args.length, parameters, config, peak
                )
                for stage in ("sft", "dpo")
            }
            results[name]["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            print(name, results[name])
    path = write_result(
        "train_qlora_gpu",
        {
            "gpu": device,
            "peak_bf16_tflops": peak,
            "model": f"random-weight Llama with {args.size} shapes, {parameters / 1e6:.0f}M parameters",
            "settings": {
                "length": args.length,
                "batch": args.batch,
                "steps": args.steps,
                "lora_r": 16,
                "quantization": "4-bit NF4, double quant, bf16 compute",
                "gradient_checkpointing": True,
            },
            "results": results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
