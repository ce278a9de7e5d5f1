"""The one base model, named once: what retrains train, what in-process answers load, what a server must serve.

``TANYA_BASE_MODEL`` names it: a bundled model's name or a transformers checkpoint folder; empty means
the model ``TANYA_GENERATOR`` names when that is a local model, else the default bundled model. With
answers from a server (``TANYA_GENERATOR=http…``), the server is asked what it serves
(``retrieval.generation.served_base``) before the worker trains and before the bot loads or activates an
adapter on it: an adapter trained for one base and served on another answers nonsense, or is refused
by the server after the run's minutes are spent.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import InputError
from bot.settings import Settings

if TYPE_CHECKING:
    from retrieval.generation.served_base import BaseModel, ServedModel

log = logging.getLogger(__name__)

# How long a bot waits before asking a server that did not answer what it serves again.
RECHECK_SECONDS = 30.0


def is_served(settings: Settings) -> bool:
    """Whether answers come from an OpenAI-compatible server rather than a model in this process."""
    return settings.generator.strip().startswith(("http://", "https://"))


def base_model_spec(settings: Settings) -> str:
    """The base as a generator spec: a bundled model's name, a folder, or "" for the default bundled model."""
    base = settings.base_model.strip()
    generator = "" if is_served(settings) else settings.generator.strip()
    generator = "" if generator == "local" else generator
    if base and generator and not _same_model(base, generator):
        raise InputError(
            f"TANYA_GENERATOR names {generator!r} and TANYA_BASE_MODEL {base!r}: the model that answers is "
            "the model that is trained, so name it once, in TANYA_BASE_MODEL"
        )
    return base or generator


def base_checkpoint(settings: Settings) -> Path:
    """The base's checkpoint folder; a bundled model is converted there once (``ensure_checkpoint``)."""
    from retrieval.generation.bundled_models import BUNDLED_MODELS  # heavy
    from retrieval.generation.checkpoint import ensure_checkpoint  # heavy

    spec = base_model_spec(settings)
    if spec and spec not in BUNDLED_MODELS:
        folder = Path(spec).expanduser()
        if not (folder / "config.json").is_file():
            raise InputError(
                f"TANYA_BASE_MODEL {spec!r} is neither a bundled model ({', '.join(BUNDLED_MODELS)}) nor a "
                "transformers checkpoint folder (one with a config.json)"
            )
        return folder
    return ensure_checkpoint(settings.models_dir, spec)


def base_model(settings: Settings) -> BaseModel:
    """The base and the names it goes by, without converting a bundled model that is not converted yet."""
    from retrieval.generation.bundled_models import BUNDLED_MODELS, bundled_model  # heavy
    from retrieval.generation.served_base import BaseModel  # heavy

    spec = base_model_spec(settings)
    if spec and spec not in BUNDLED_MODELS:
        return BaseModel(folder=Path(spec).expanduser())
    bundled = bundled_model(spec)
    return BaseModel(folder=settings.models_dir / bundled.name, aliases=(bundled.hub_id, bundled.name))


def check_served_base(settings: Settings, *, timeout: float = 10.0) -> ServedModel:
    """The served entry that is the base; raises ``ServedBaseMismatchError`` (what differs) or
    ``ServerUnavailableError``."""
    from retrieval.generation.served import with_v1  # heavy
    from retrieval.generation.served_base import fetch_served_models, match_served_base  # heavy

    key = settings.generator_api_key
    served = fetch_served_models(
        with_v1(settings.generator.strip()),
        api_key=key.get_secret_value() if key else None,
        timeout=timeout,
    )
    return match_served_base(served, base_model(settings), requested=settings.generator_model)


def require_served_base(settings: Settings) -> None:
    """Before a retrain: stop it when the server serves another base (nothing is trained for it).

    A server that does not answer stops nothing: it may be restarting, and the adapter is checked against
    the server's rules again before it is registered.
    """
    if not is_served(settings):
        return
    from retrieval.generation.served_base import ServedBaseMismatchError, ServerUnavailableError  # heavy

    try:
        model = check_served_base(settings)
    except ServerUnavailableError as exc:
        log.warning(
            "could not ask the server which base it serves (%s): training for %s anyway",
            exc,
            base_model(settings).label,
        )
        return
    except ServedBaseMismatchError as exc:
        raise InputError(f"not training: {exc}") from None
    log.info("the server serves the base model adapters are trained for: %s", model.describe())


def served_prompt_budget(settings: Settings, model: ServedModel) -> tuple[int, str] | None:
    """(prompt tokens, tokenizer folder) for answers from `model`: its context (``max_model_len``) less the
    answer's tokens, counted with the base's own tokenizer; None when either is unknown here."""
    folder = base_model(settings).folder
    if not model.max_model_len or not (folder / "config.json").is_file():
        return None
    return max(256, int(model.max_model_len) - settings.max_new_tokens), str(folder)


@dataclass
class ServedBaseVerdict:
    """What a bot last learned from the server: matched (with the entry), mismatched (why), or unknown."""

    model: ServedModel | None = None
    mismatch: str | None = None
    unreachable: str | None = None
    fallback: str | None = None  # on a mismatch, the one base the server serves: answers still come from it

    @property
    def served_name(self) -> str | None:
        """The name answers are asked of: the matched base's, else (on a mismatch) the one base served."""
        return self.model.id if self.model is not None else self.fallback


class ServedBaseGuard:
    """A bot's check that its server serves the base, asked at start-up and again until it gets an answer.

    Until the server has said it serves the base, the bot neither loads nor activates adapters on it;
    answers still come from the served base model.
    """

    def __init__(self, settings: Settings, *, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.settings = settings
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._verdict = ServedBaseVerdict()
        self._asked_at: float | None = None

    def verdict(self) -> ServedBaseVerdict:
        """The last answer, asking the server first when it has not answered yet (at most every recheck)."""
        from retrieval.generation.served_base import ServedBaseMismatchError, ServerUnavailableError  # heavy

        with self._lock:
            decided = self._verdict.model is not None or self._verdict.mismatch is not None
            recent = self._asked_at is not None and time.monotonic() - self._asked_at < self.recheck_seconds
            if decided or recent:
                return self._verdict
            self._asked_at = time.monotonic()
            try:
                model = check_served_base(self.settings, timeout=5.0)
            except ServedBaseMismatchError as exc:
                only = exc.served[0].id if len(exc.served) == 1 else None
                self._verdict = ServedBaseVerdict(mismatch=str(exc), fallback=only)
                log.error("adapters stay off: %s", exc)
            except ServerUnavailableError as exc:
                self._verdict = ServedBaseVerdict(unreachable=str(exc))
                log.warning("could not ask the server which base it serves: %s", exc)
            else:
                self._verdict = ServedBaseVerdict(model=model)
                log.info("the server serves the base model: %s", model.describe())
            return self._verdict

    def describe(self) -> str:
        verdict = self.verdict()
        if verdict.model is not None:
            return f"served as {verdict.model.describe()}"
        if verdict.mismatch is not None:
            return f"MISMATCH, adapters off: {verdict.mismatch}"
        return f"not checked yet: {verdict.unreachable}"


def _same_model(first: str, second: str) -> bool:
    one, two = Path(first).expanduser(), Path(second).expanduser()
    if one.exists() and two.exists():
        return one.resolve() == two.resolve()
    return first == second
