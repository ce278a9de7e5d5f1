"""QLoRA SFT + DPO on CUDA: tokens/s, peak GPU memory and MFU, tanya's trainer against a plain TRL script.

    .venv/bin/python benchmarks/train_qlora_gpu.py [--size 8b] [--length 2048] [--batch 4] [--steps 8]

On a GPU machine without network (torch, transformers, peft and accelerate installed), prepare here with
``bash benchmarks/prepare_gpu_check.sh`` (wheels in ``.whl/``, a tokenizer in ``.gpu/tokenizer``), carry
both folders, and run, in about six minutes for 8B on one H100/H200::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
      PYTHONPATH=/tmp/site:. python3 benchmarks/train_qlora_gpu.py --tokenizer .gpu/tokenizer

Builds a decoder with Qwen3's architecture and the shapes of Qwen3-0.6B … 8B (vocabulary 151,936) with
random weights, so nothing is downloaded, and trains it twice with the same LoRA settings (r=16 on all
linear layers, 4-bit NF4 base with double quantisation and bf16 compute, gradient checkpointing):

* tanya: ``alignment.model.load_base_model`` + ``alignment.train.train_adapter`` (what ``tanya worker``
  runs, with its CUDA defaults: paged 8-bit AdamW, Liger kernels when installed);
* plain: the QLoRA recipe of TRL's documentation, ``SFTTrainer(peft_config=…)`` then ``DPOTrainer`` on
  its PeftModel with ``ref_model=None``.

Every row is exactly ``--length`` tokens, so a step processes ``batch × length`` tokens (twice that for
DPO's chosen + rejected). The first two steps of each stage are warm-up and not timed. MFU divides the
achieved model FLOP/s by the bf16 peak measured on the machine (an 8192³ bf16 matrix product: about
790 TFLOP/s on the H100 and H200 here; ``--peak-tflops`` for another card): a frozen (quantised) weight
needs no weight gradient, so a LoRA training token costs ≈ 4·N FLOPs (forward 2·N, input gradients 2·N)
plus 2·N for DPO's reference forward; attention adds 12·layers·hidden·length per token. Then tanya's
adapter is checked against vLLM's rules, answers a question in-process (the gate's answer path, on the
GPU), and the plan of ``alignment.gpu_plan`` is compared with the peak memory measured. Results are
written after each part, to ``benchmarks/results/train_qlora_gpu.json`` (and ``$OUT`` when set).
Exits with status 2 and a message when CUDA or bitsandbytes is absent.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import write_result

SIZES = {  # hidden, layers, heads, kv heads, intermediate, tied embeddings: Qwen3's config.json files
    "0.6b": (1024, 28, 16, 8, 3072, True),
    "1.7b": (2048, 28, 16, 8, 6144, True),
    "4b": (2560, 36, 32, 8, 9728, True),
    "8b": (4096, 36, 32, 8, 12288, False),
}
VOCAB = 151936
MEASURED_PEAK_BF16_TFLOPS = {"H100": 790.0, "H200": 790.0}  # 8192³ bf16 matmul on these machines


def _peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((value for key, value in MEASURED_PEAK_BF16_TFLOPS.items() if key in name), None)


def _tokenizer(folder: Path | None) -> Any:
    from transformers import AutoTokenizer

    if folder is not None:
        return AutoTokenizer.from_pretrained(folder)
    from retrieval.generation.bundled_models import SMOLLM2

    gguf = SMOLLM2.part_paths()[0]
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def _random_model(size: str, folder: Path, tokenizer: Any) -> tuple[Path, int, Any]:
    """A Qwen3 decoder of `size`'s shapes with random bf16 weights, built on the GPU and saved to `folder`."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    hidden, layers, heads, kv_heads, inter, tied = SIZES[size]
    config = Qwen3Config(
        vocab_size=VOCAB,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=128,
        intermediate_size=inter,
        max_position_embeddings=8192,
        tie_word_embeddings=tied,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return folder, parameters, config


def _rows(tokenizer: Any, length: int, count: int) -> dict[str, list[dict[str, Any]]]:
    """Rows of ``length`` tokens: a prompt of length-32 random words and a 32-token answer.

    The words are tokens that stand alone (a leading space, and encoding their text gives them back), so a
    text of n of them is n tokens long and no row is cut short by ``max_length``.
    """
    import random

    rng = random.Random(0)
    words = []
    for token in range(min(len(tokenizer), 30000)):
        piece = tokenizer.decode([token])
        if (
            piece.startswith(" ")
            and piece[1:].isalpha()
            and tokenizer.encode(piece, add_special_tokens=False) == [token]
        ):
            words.append(piece)

    def text(tokens: int) -> str:
        return "".join(rng.choice(words) for _ in range(tokens))

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
        self.load_seconds: dict[str, float] = {}

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


def run_tanya(model_dir: Path, rows: dict, args: argparse.Namespace, timer: _Timer, out: Path) -> Any:
    """tanya's trainer; returns its resolved config (the adapter is written to `out`)."""
    from alignment.config import AlignmentConfig
    from alignment.datasets import SplitRows
    from alignment.model import load_base_model, resolve_config
    from alignment.progress import RunMonitor, TrainingLog
    from alignment.train import StagePlan, train_adapter

    config = resolve_config(
        AlignmentConfig(
            device="cuda",
            batch_size=args.batch,
            preference_batch_size=args.batch,
            gradient_accumulation_steps=1,
            max_length=args.length,
            lora_r=16,
            sft_max_steps=args.steps,
            preference_max_steps=args.steps,
            keep_best_stage=False,
        ),
        model_dir,
    )
    started = time.time()
    loaded = load_base_model(model_dir, config)
    timer.load_seconds["tanya"] = time.time() - started
    plan = StagePlan(sft=True, dpo=True, kto=False, kto_rows="", reason="benchmark")
    log = TrainingLog(None)
    with RunMonitor(log, show=False) as monitor:
        train_adapter(loaded, SplitRows(**rows), config, plan, out, monitor)
    for stage in ("sft", "dpo"):
        for record in log.stage(stage):
            if "loss" in record:
                timer.add(stage, record["time"])
    del loaded
    return config


def run_plain(model_dir: Path, rows: dict, args: argparse.Namespace, timer: _Timer, out: Path) -> None:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    started = time.time()
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
    timer.load_seconds["plain_trl"] = time.time() - started
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
    sft = SFTTrainer(
        model=model,
        args=SFTConfig(output_dir=str(out), learning_rate=1e-4, **common),
        train_dataset=Dataset.from_list(rows["sft"]),
        processing_class=tokenizer,
        peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"),
        callbacks=[timer.callback("sft")],
    )
    sft.train()
    dpo = DPOTrainer(
        model=sft.model,
        ref_model=None,
        args=DPOConfig(output_dir=str(out), learning_rate=1e-5, **common),
        train_dataset=Dataset.from_list(rows["dpo"]),
        processing_class=tokenizer,
        callbacks=[timer.callback("dpo")],
    )
    dpo.train()


def answer_with_adapter(
    model_dir: Path, adapter: Path, tokenizer: Any, device: str = "cuda"
) -> dict[str, Any]:
    """vLLM's rules on the new adapter, then one in-process answer with it on the GPU (the gate's path)."""
    from alignment.answer_quality import AnswerWriter
    from alignment.evaluate import Scorer
    from retrieval.generation.served_adapter_rules import served_adapter_refusals

    refusals = served_adapter_refusals(adapter, max_lora_rank=16)
    started = time.time()
    scorer = Scorer.load(model_dir, {"tanya": adapter}, device=device)
    loaded = time.time() - started
    question = "Berapa hari cuti tahunan karyawan?"
    user = f"Sources:\n[1] Setiap karyawan mendapat 24 hari cuti tahunan.\n\nQuestion: {question}"
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
    )
    started = time.time()
    text = AnswerWriter(scorer, max_new_tokens=32).answer(
        "tanya", {"prompt": prompt, "question": question, "user_message": user}
    )
    return {
        "vllm_refusals": refusals,
        "load_seconds": round(loaded, 1),
        "answer_seconds": round(time.time() - started, 2),
        "answer_chars": len(text),  # random weights: the text itself is noise
    }


def memory_check(config: Any, args: argparse.Namespace, measured: dict[str, Any]) -> dict[str, Any]:
    """alignment.gpu_plan's estimate for the run's batch and length beside the peak measured."""
    import torch

    from alignment.gpu_plan import GIB, Shapes, bytes_per_token, fixed_bytes, plan_qlora

    shapes = Shapes.from_config(config.to_dict())
    fixed, per_token = fixed_bytes(shapes, 16), bytes_per_token(shapes, fused_head=True)
    card = torch.cuda.get_device_properties(0).total_memory / GIB
    return {
        "estimated_sft_gib": round((fixed + args.batch * args.length * per_token) / GIB, 2),
        "estimated_dpo_gib": round((fixed + 2 * args.batch * args.length * per_token) / GIB, 2),
        "measured_peak_gib": {name: part.get("peak_gpu_memory_gib") for name, part in measured.items()},
        "plan_for_this_card": plan_qlora(config.to_dict(), card, rank=16, fused_head=True).describe(),
    }


def retrain_estimate(results: dict[str, Any], answer: dict[str, Any] | None, length: int) -> dict[str, Any]:
    """Minutes for a retrain on 1,000 feedback rows, from the measured rates, with the arithmetic."""
    tanya = results["tanya"]
    sft_rows, pairs, tokens = 600 * 0.8, 400 * 0.8, min(length, 1500)  # 80 % train split
    sft = sft_rows * tokens * 3 / tanya["sft"]["tokens_per_s"]  # three epochs
    dpo = pairs * 2 * tokens * 2 / tanya["dpo"]["tokens_per_s"]  # chosen + rejected, two epochs
    # The gate scores 200 held-out rows per variant (forward only: a third of a training token's cost)
    # for the active adapter and the candidate, and lets both write 32 answers.
    gate_scoring = 2 * 200 * tokens / (3 * tanya["sft"]["tokens_per_s"])
    gate_answers = 2 * 32 * (answer or {}).get("answer_seconds", 2.0)
    loads = results.get("load_seconds", {}).get("tanya", 60.0) + (answer or {}).get("load_seconds", 30.0)
    total = sft + dpo + gate_scoring + gate_answers + loads
    return {
        "assumed": "1,000 rows = 600 answers (👍 + corrections) + 400 DPO pairs, 1,500 tokens each, 80 % trained",
        "arithmetic": f"SFT {sft:.0f} s + DPO {dpo:.0f} s + gate scoring {gate_scoring:.0f} s + gate answers "
        f"{gate_answers:.0f} s + model loads {loads:.0f} s = {total / 60:.1f} min",
        "minutes": round(total / 60, 1),
    }


def _save(payload: dict[str, Any]) -> Path:
    path = write_result("train_qlora_gpu", payload)
    if os.environ.get("OUT"):  # a device machine's folder of files that come back
        Path(os.environ["OUT"], path.name).write_text(path.read_text())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="8b")
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--tokenizer", type=Path, help="a tokenizer folder (default: the bundled SmolLM2's)")
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
    results: dict[str, Any] = {"load_seconds": {}}
    tokenizer = _tokenizer(args.tokenizer)
    payload: dict[str, Any] = {
        "gpu": device,
        "peak_bf16_tflops": peak,
        "settings": {
            "size": args.size,
            "length": args.length,
            "batch": args.batch,
            "steps": args.steps,
            "lora_r": 16,
            "quantization": "4-bit NF4, double quant, bf16 compute",
            "gradient_checkpointing": True,
        },
        "results": results,
    }
    started = time.time()
    with tempfile.TemporaryDirectory() as folder:
        model_dir, parameters, config = _random_model(args.size, Path(folder) / "base", tokenizer)
        payload["model"] = f"random-weight Qwen3 with {args.size} shapes, {parameters / 1e6:.0f}M parameters"
        payload["build_seconds"] = round(time.time() - started, 1)
        rows = _rows(tokenizer, args.length, args.batch * args.steps)
        adapter = Path(folder) / "adapter"
        for name, runner in (("tanya", run_tanya), ("plain_trl", run_plain)):
            gc.collect()  # the previous run's model and optimizer, before the peak is reset
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            timer = _Timer()
            resolved = runner(
                model_dir, rows, args, timer, adapter if name == "tanya" else Path(folder) / name
            )
            results[name] = {
                stage: _stage_numbers(
                    stage, timer.per_step(stage), args.batch, args.length, parameters, config, peak
                )
                for stage in ("sft", "dpo")
            }
            results[name]["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            results["load_seconds"].update({k: round(v, 1) for k, v in timer.load_seconds.items()})
            if resolved is not None:
                results[name]["defaults"] = {
                    key: getattr(resolved, key) for key in ("optimizer", "liger_kernels", "sft_packing")
                }
            print(name, json.dumps(results[name]), flush=True)
            _save(payload)
        gc.collect()
        torch.cuda.empty_cache()
        payload["speedup"] = {
            stage: round(
                results["tanya"][stage]["tokens_per_s"] / results["plain_trl"][stage]["tokens_per_s"], 3
            )
            for stage in ("sft", "dpo")
        }
        payload["memory"] = memory_check(config, args, results)
        payload["answer"] = answer_with_adapter(model_dir, adapter, tokenizer)
        payload["retrain_1000_rows"] = retrain_estimate(results, payload["answer"], args.length)
    payload["total_seconds"] = round(time.time() - started, 1)
    print(f"wrote {_save(payload)}: {json.dumps(payload, ensure_ascii=False)}")


if __name__ == "__main__":
    main()
