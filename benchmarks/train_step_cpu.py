"""Seconds per SFT, DPO and KTO step, and peak RSS, for a bundled model on the CPU.

    .venv/bin/python benchmarks/train_step_cpu.py [--runs 256:1 1024:1 256:2] [--steps 4] [--batch 2]
    .venv/bin/python benchmarks/train_step_cpu.py --runs 768:2 768:2:bf16 --name train_step_cpu_bf16
    .venv/bin/python benchmarks/train_step_cpu.py --base gemma3-270m --stages sft --batch 1 \
        --runs 1024:2:bf16 1024:2:bf16:trl-head 1024:2 --name train_step_cpu_gemma

``:trl-head`` trains with TRL's own ``SFTTrainer`` and fused DPO/KTO head, which score every position off
CUDA, instead of tanya's answer-only heads (``alignment.completion_loss``), to compare them in one run.

Runs the same code as ``tanya retrain`` (alignment.train.train_adapter with the CPU defaults: fp32,
LoRA r=16 on all linear layers) on synthetic rows whose prompt + answer fill the given token length,
``--steps`` steps per stage plus one warm-up step that is not counted. Each run is LENGTH:THREADS
(torch threads; the CPU default is all cores but one), or LENGTH:THREADS:bf16 for ``cpu_bf16`` (bf16
autocast), in a fresh child process, so that its peak RSS
(getrusage) is its own. The machine's load average is recorded because the cores may be shared: with
more threads than free cores, torch's threads wait on each other. Writes ``benchmarks/results/<name>.json``
(``--name``, default ``train_step_cpu``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean, median

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import write_result

FILLER = "The handbook says remote work is allowed up to three days a week after approval by a lead. "


def _rows(tokenizer, length: int, count: int) -> dict[str, list[dict]]:  # type: ignore[no-untyped-def]
    from alignment.chat_format import ChatFormat
    from alignment.regression import grounded_messages

    chat = ChatFormat.from_tokenizer(tokenizer)
    answer_tokens = 48
    context = FILLER * (length // 16)
    ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    sft, dpo, kto = [], [], []
    for number in range(count):
        question = f"How many remote days are allowed, case {number}?"
        overhead = (
            chat.token_count(chat.prompt(grounded_messages(question, [("handbook", "")]))) + answer_tokens
        )
        passage = tokenizer.decode(ids[: max(16, length - overhead)])
        prompt = chat.prompt(grounded_messages(question, [("handbook", passage)]))
        good = chat.completion(
            ("Up to three days a week, after a lead approves it [1]. " * 8)[: answer_tokens * 3]
        )
        bad = chat.completion(("Remote work is not allowed at all, ever. " * 8)[: answer_tokens * 3])
        sft.append({"prompt": prompt, "completion": good})
        dpo.append({"prompt": prompt, "chosen": good, "rejected": bad})
        kto.append(
            {"prompt": prompt, "completion": good if number % 2 == 0 else bad, "label": number % 2 == 0}
        )
    return {"sft": sft, "dpo": dpo, "kto": kto}


def measure(
    length: int,
    threads: int,
    steps: int,
    batch: int,
    *,
    bf16: bool = False,
    base: str = "",
    stages: tuple[str, ...] = ("sft", "dpo", "kto"),
    trl_head: bool = False,
) -> dict:
    """One length in this process: train each of ``stages`` for ``steps + 1`` steps."""
    import alignment.train

    if trl_head:  # TRL's own SFTTrainer and fused head, which score every position off CUDA
        from contextlib import nullcontext

        from trl import SFTTrainer

        alignment.train.completion_sft_trainer_class = lambda: SFTTrainer
        alignment.train.compact_fused_head = lambda device: nullcontext()
    from alignment.config import AlignmentConfig
    from alignment.datasets import SplitRows
    from alignment.model import load_base_model, resolve_config
    from alignment.progress import RunMonitor, TrainingLog
    from alignment.train import StagePlan, train_adapter
    from retrieval.generation.checkpoint import ensure_checkpoint

    checkpoint = ensure_checkpoint(
        Path(os.environ.get("TANYA_BENCH_MODELS", Path.home() / ".cache/tanya-bench")), base
    )
    config = resolve_config(
        AlignmentConfig(
            device="cpu",
            torch_threads=threads,
            batch_size=batch,
            max_length=length + 8,
            sft_max_steps=steps + 1,
            preference_max_steps=steps + 1,
            cpu_bf16=bf16,
        ),
        checkpoint,
    )
    loaded = load_base_model(checkpoint, config)
    rows = _rows(loaded.tokenizer, length, count=batch * (steps + 1))
    plan = StagePlan(
        sft="sft" in stages, dpo="dpo" in stages, kto="kto" in stages, kto_rows="unpaired", reason="benchmark"
    )
    log = TrainingLog(None)
    with tempfile.TemporaryDirectory() as scratch, RunMonitor(log, show=False) as monitor:
        started = time.time()
        result = train_adapter(loaded, SplitRows(**rows), config, plan, Path(scratch) / "adapter", monitor)
        total = time.time() - started
    stages = {}
    for stage in plan.stages:
        begin = next(r["time"] for r in log.records if r.get("stage") == stage and r.get("event") == "begin")
        times = [begin] + [r["time"] for r in log.stage(stage)]
        per_step = [b - a for a, b in itertools.pairwise(times)][1:]  # drop the warm-up step
        tokens = [r.get("num_tokens") for r in log.stage(stage)]
        stages[stage] = {
            "seconds_per_step_mean": round(mean(per_step), 3),
            "seconds_per_step_median": round(median(per_step), 3),
            "measured_steps": len(per_step),
            "rows_per_step": batch,
            # DPO: chosen + rejected; KTO: each completion + a mismatched one for its KL estimate.
            "sequences_per_step": batch * (1 if stage == "sft" else 2),
            "num_tokens_logged": tokens[-1] if tokens else None,
        }
    return {
        "length_tokens": length,
        "stages": stages,
        "trainer_seconds": result.seconds,
        "wall_seconds": round(total, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": __import__("torch").get_num_threads(),
        "precision": "bf16 autocast (cpu_bf16)" if bf16 else "fp32",
        "lm_head": "TRL's (every position)" if trl_head else "tanya's (answer positions only)",
        "lora": {"r": config.lora_r, "alpha": config.lora_alpha, "targets": config.target_modules},
    }


def _bf16_flags() -> list[str]:
    """The CPU's native bf16 instructions, which decide whether bf16 autocast is faster (Linux only)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 2)[1].splitlines()[0].split()
    except (OSError, IndexError):
        return []
    return sorted(flag for flag in flags if "bf16" in flag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs",
        nargs="+",
        default=["256:1", "1024:1", "256:2"],
        help="LENGTH:THREADS[:bf16][:trl-head] (trl-head: TRL's SFTTrainer instead of tanya's)",
    )
    parser.add_argument("--name", default="train_step_cpu", help="result file name, without .json")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--base", default="", help="bundled model name (default SmolLM2-135M)")
    parser.add_argument("--stages", nargs="+", default=["sft", "dpo", "kto"], choices=["sft", "dpo", "kto"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        length, threads, *flags = args.child.split(":")
        print(
            json.dumps(
                measure(
                    int(length),
                    int(threads),
                    args.steps,
                    args.batch,
                    bf16="bf16" in flags,
                    trl_head="trl-head" in flags,
                    base=args.base,
                    stages=tuple(args.stages),
                )
            )
        )
        return
    runs = []
    for spec in args.runs:
        load_before = os.getloadavg()[0]
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                spec,
                "--steps",
                str(args.steps),
                "--batch",
                str(args.batch),
                "--base",
                args.base,
                "--stages",
                *args.stages,
            ],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
        ).stdout
        run = json.loads(output.strip().splitlines()[-1])
        run["load_average_1min_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        runs.append(run)
        print(json.dumps(run))
    path = write_result(
        args.name,
        {
            "model": f"{args.base or 'SmolLM2-135M-Instruct'} (bundled, CPU)",
            "cpu_flags": _bf16_flags(),
            "setup": "alignment.train.train_adapter with the CPU defaults; synthetic grounded rows; "
            "first step of each stage not counted",
            "runs": runs,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
