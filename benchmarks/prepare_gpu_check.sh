#!/usr/bin/env bash
# What the QLoRA GPU check needs on a GPU machine with no network, prepared here, where pip works:
#
#     bash benchmarks/prepare_gpu_check.sh
#
# * .whl/  the wheels that machine lacks (it has torch, transformers, peft and accelerate): TRL and what
#          it imports (datasets, dill, multiprocess), bitsandbytes for 4-bit NF4, Liger's kernels, and
#          SQLAlchemy (tanya's alignment package imports its storage layer); for CPython 3.12, x86-64.
# * .gpu/tokenizer/  the bundled SmolLM2 tokenizer saved as a plain folder (the GGUF reader is not there).
#
# Both folders are git-ignored; the device command carries them (benchmarks/train_qlora_gpu.py says how).
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
rm -rf .whl && mkdir -p .whl .gpu
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl \
  "trl==$("$python" -c 'import trl; print(trl.__version__)')" \
  "bitsandbytes>=0.45,<1" "liger-kernel>=0.6,<1" \
  "datasets==$("$python" -c 'import datasets; print(datasets.__version__)')" \
  dill multiprocess \
  "sqlalchemy==$("$python" -c 'import sqlalchemy; print(sqlalchemy.__version__)')"
HF_HUB_OFFLINE=1 "$python" - <<'PY'
from transformers import AutoTokenizer

from retrieval.generation.bundled_models import SMOLLM2

gguf = SMOLLM2.part_paths()[0]
AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(".gpu/tokenizer")
PY
du -sh .whl .gpu/tokenizer
ls .whl
