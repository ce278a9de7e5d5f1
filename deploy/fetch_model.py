#!/usr/bin/env python3
"""Fill the ``models`` volume with the base model, once; installed in the image as ``tanya-fetch-model``.

compose's one-shot ``model-download`` service runs it before vLLM starts. The base model is named once,
by ``TANYA_BASE_MODEL`` (a folder on the volume, e.g. ``/models/Qwen3-8B``): vLLM serves that folder, the
worker trains on it and the bot checks that the server serves it. This fills the folder:

* a folder that already holds a checkpoint (``config.json``) is left as it is: an earlier download, or
  an operator's own copy on a site without internet access;
* otherwise the Hub repository ``MODEL_REPO`` (default ``Qwen/Qwen3-8B``) is downloaded into it, with
  ``HF_TOKEN`` from ``.env`` for gated models; weights, config and tokenizer only. It goes to a folder
  beside the target first and is renamed into place complete, so an interrupted download never looks
  like a model.

Exit status 0 when the folder holds a checkpoint, 1 with a message otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

DEFAULT_REPO = "Qwen/Qwen3-8B"
WANTED = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]


def fetch(target: Path, repo: str, *, offline: bool) -> str:
    """What was done, in one line; raises SystemExit(message) when the folder cannot be filled."""
    if (target / "config.json").is_file():
        return f"{target} already holds a checkpoint; nothing to download"
    if offline:
        raise SystemExit(
            f"no checkpoint at {target}, and HF_HUB_OFFLINE is set: copy the model's folder (config.json, "
            "tokenizer and *.safetensors) there, or unset HF_HUB_OFFLINE for this service to download "
            f"{repo}"
        )
    from huggingface_hub import snapshot_download

    partial = target.with_name(f".{target.name}.partial")
    snapshot_download(
        repo_id=repo, local_dir=partial, allow_patterns=WANTED, token=os.environ.get("HF_TOKEN")
    )
    if not (partial / "config.json").is_file():
        raise SystemExit(f"{repo} has no config.json: is it a transformers checkpoint?")
    shutil.rmtree(partial / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping
    partial.rename(target)
    return f"downloaded {repo} to {target}"


def main() -> int:
    base = os.environ.get("TANYA_BASE_MODEL", "").strip()
    if not base.startswith("/"):
        print(f"TANYA_BASE_MODEL must be a folder on the models volume (e.g. /models/Qwen3-8B), not {base!r}")
        return 1
    repo = os.environ.get("MODEL_REPO", "").strip() or DEFAULT_REPO
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes")
    try:
        print(fetch(Path(base), repo, offline=offline))
    except SystemExit as stop:
        print(stop.code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
