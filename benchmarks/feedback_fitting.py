"""Corrections on answers over long Indonesian documents: how many become training rows.

    .venv/bin/python benchmarks/feedback_fitting.py            # ~10 min on 2 CPU cores (8 real answers)
    .venv/bin/python benchmarks/feedback_fitting.py --generator gemma3-270m

Through the product, in a fresh ``TANYA_HOME``: ``../shared/seeds`` (the Indonesian and Malay articles)
are ingested with ``Tanya.ingest``; eight questions about them are asked with ``Tanya.ask`` (the real
retrieval, prompt and generator), each answer gets a 👎 and a correction as a team member would write
it; then the training rows are built exactly as ``tanya retrain`` builds them, with the default CPU
training length. Side by side in the same run: how many rated answers are over that length as stored
(what used to be thrown away as ``too_long``), and how many rows the run now trains on, and what it
shortened to get them. Writes ``benchmarks/results/feedback_fitting.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

SEEDS = REPO.parent / "shared" / "seeds"
# Questions a team would ask about the seed articles, with the answer a colleague would type as a fix.
QUESTIONS = [
    (
        "Apa itu fine-tuning?",
        "melatih ulang pre-trained model pada dataset baru yang lebih kecil dan spesifik",
    ),
    ("Vector DB apa yang disebut untuk RAG?", "FAISS dan Weaviate"),
    ("Kapan RAG adalah pilihan terbaik?", "Jika jawaban memerlukan pengenalan data eksternal"),
    ("Algoritma apa yang umum digunakan dalam fine-tuning?", "LoRA dan QLoRA"),
    ("Apa risiko full fine-tuning?", "Catastrophic Forgetting"),
    ("Apa itu QLoRA?", "versi pengembangan dari LoRA yang menggabungkan teknik kuantisasi"),
    ("Fine tuning diibaratkan sebagai apa?", "Pendidikan Spesialis (Residensi)"),
    (
        "Apa perbedaan fine-tuning dan RAG?",
        "Fine-tuning melatih ulang model; RAG mengambil dokumen saat menjawab",
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", default="", help="TANYA_GENERATOR for the answers (default: bundled)")
    parser.add_argument("--name", default="feedback_fitting", help="result file name")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tanya-fitting-"))
    os.environ.update(TANYA_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    os.environ["TANYA_GENERATOR"] = args.generator

    from alignment.chat_format import ChatFormat
    from alignment.feedback import load_feedback
    from alignment.model import load_tokenizer, resolve_config
    from alignment.pipeline import prepare_data
    from bot.service import Tanya
    from bot.settings import Settings
    from bot.training import training_base, training_setup
    from storage import ChannelKind

    settings = Settings()
    service = Tanya(settings)
    started = time.time()
    service.ingest([SEEDS])
    ingest_seconds = time.time() - started
    answers = []
    for number, (question, fix) in enumerate(QUESTIONS):
        answer = service.ask(
            question, origin=ChannelKind.public_channel, user_id=f"U{number}", channel_id="C1"
        )
        service.rate(answer.interaction_id, user_id=f"U{number}", up=False, source="benchmark")
        service.correct(answer.interaction_id, user_id=f"U{number}", text=fix, source="benchmark")
        answers.append({"question": question, "answer": answer.text, "sources": len(answer.sources)})

    config, _, _ = training_setup(settings)
    base = training_base(settings)
    config = resolve_config(config, base)
    chat = ChatFormat.from_tokenizer(load_tokenizer(base))
    with service.database.session() as session:
        snapshot = load_feedback(session, include_private=config.include_private)
    prompt_tokens = [chat.token_count(chat.prompt(item.messages, item.prompt)) for item in snapshot.answers]
    over = sum(1 for tokens in prompt_tokens if tokens > config.max_length)
    data = prepare_data(service.database, chat, config)
    stats = data.stats()
    rows = stats["train"]["sft"] + stats["eval"]["sft"]
    result = {
        "base_model": base.name,
        "generator": args.generator or "bundled default",
        "max_length": config.max_length,
        "rated_answers": len(snapshot.answers),
        "stored_prompt_tokens": sorted(prompt_tokens),
        "over_length_as_stored": over,
        "sft_rows": rows,
        "dpo_pairs": stats["train"]["dpo"] + stats["eval"]["dpo"],
        "excluded": stats["excluded"],
        "fitted": stats["fitted"],
        "lost_to_length": stats["excluded"].get("too_long", 0),
        "ingest_seconds": round(ingest_seconds, 1),
        "seconds": round(time.time() - started, 1),
        "answers": answers,
    }
    path = write_result(args.name, result)
    print(
        f"{len(snapshot.answers)} corrected answers, {over} over {config.max_length} tokens as stored; "
        f"{rows} SFT rows; lost to length: {result['lost_to_length']}; fitted: {stats['fitted']} → {path}"
    )


if __name__ == "__main__":
    main()
