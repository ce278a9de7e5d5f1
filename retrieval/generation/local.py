"""A chat generator that runs a small causal language model in-process, with hot-swappable LoRA adapters.

The bot learns from its users by training LoRA adapters; a new adapter has to go live without restarting
the bot and without reloading the base model, and a user whose answer is being written at that moment must
get an answer from one adapter, not half from each. One lock guards the weights: a generation holds it from
its first token to its last, and loading an adapter waits for it. Activating an adapter only records the
name; the next generation applies it.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from haystack import component, default_from_dict, default_to_dict, logging
from haystack.dataclasses import ChatMessage, ComponentInfo, StreamingChunk

from retrieval.generation.adapters import AdapterLoadError, validate_adapter_dir
from retrieval.generation.base_identity import BaseIdentity, identify_checkpoint
from retrieval.generation.streaming import Cancel, generate_streaming
from retrieval.generation.token_budget import fit_chat

logger = logging.getLogger(__name__)


@component
class LocalChatGenerator:
    """Generates chat replies with a transformers checkpoint on this machine (a bundled model by default)."""

    def __init__(
        self,
        *,
        model_path: Path | str,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        max_prompt_tokens: int | None = None,
        adapters: dict[str, str] | None = None,
        active_adapter: str | None = None,
        repetition_penalty: float = 1.0,
        torch_threads: int | None = None,
        device: str = "auto",
    ) -> None:
        """
        :param model_path: folder of a transformers checkpoint with a chat template (see `ensure_checkpoint`).
        :param max_new_tokens: default length limit of a reply.
        :param temperature: 0 decodes greedily, so the same question gets the same answer.
        :param max_prompt_tokens: prompt budget; defaults to the model's context minus `max_new_tokens`.
            Longer prompts are shortened in the middle rather than rejected.
        :param adapters: LoRA adapters to load at warm-up, name -> folder.
        :param active_adapter: the adapter to use after warm-up; `None` means the base model.
        :param repetition_penalty: above 1.0, discourages repeating what the reply itself already said
            (the prompt is exempt, so quoting a source is not penalized). Small models otherwise loop.
        :param torch_threads: sets torch's (process-wide) thread count at warm-up. On a machine whose cores
            are shared, one thread can be several times faster than oversubscribing them.
        :param device: "auto" (a CUDA GPU when torch sees one, in bf16; else the CPU in fp32), "cuda" or "cpu".
        """
        if active_adapter is not None and active_adapter not in (adapters or {}):
            raise ValueError(f"active_adapter {active_adapter!r} is not among the adapters to load")
        self.model_path = Path(model_path)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.max_prompt_tokens = max_prompt_tokens
        self.adapters = dict(adapters or {})
        self.initial_adapter = active_adapter
        self.repetition_penalty = repetition_penalty
        self.torch_threads = torch_threads
        if device not in ("auto", "cuda", "cpu"):
            raise ValueError(f"device must be auto, cuda or cpu, not {device!r}")
        self.device = device
        self.model_name = self.model_path.name
        self._model: Any = None  # the PreTrainedModel, or the PeftModel wrapping it once an adapter is loaded
        self._base: Any = None
        self._tokenizer: Any = None
        self._identity: BaseIdentity | None = None
        self._loaded: dict[str, Path] = {}
        self._active: str | None = None
        self._weights_lock = threading.Lock()
        self._state_lock = threading.Lock()
        # Called between two generated tokens, in the generating thread (not serialized: it is wiring, not
        # configuration). The Slack bot sets it so that generation waits while a request is acknowledged.
        self.between_tokens: Callable[[], object] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Serializes the component; adapters are saved with the name that was active."""
        return default_to_dict(
            self,
            model_path=str(self.model_path),
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            max_prompt_tokens=self.max_prompt_tokens,
            adapters={name: str(path) for name, path in {**self.adapters, **self._loaded}.items()},
            active_adapter=self.active_adapter if self._model is not None else self.initial_adapter,
            repetition_penalty=self.repetition_penalty,
            torch_threads=self.torch_threads,
            device=self.device,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocalChatGenerator:
        """Deserializes the component."""
        return default_from_dict(cls, data)

    def warm_up(self) -> None:
        """Loads tokenizer and weights (a second or two for a bundled model) and the configured adapters."""
        if self._model is not None:
            return
        import torch  # heavy
        from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy

        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        if not tokenizer.chat_template:
            raise ValueError(f"the checkpoint at {self.model_path} has no chat template")
        cuda = self.device == "cuda" or (self.device == "auto" and torch.cuda.is_available())
        if cuda:  # a 7-14B base in bf16 on the GPU; the bundled models in fp32 on the CPU
            model = AutoModelForCausalLM.from_pretrained(
                self.model_path, dtype=torch.bfloat16, device_map="cuda"
            )
        else:
            model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=torch.float32)
        model.eval()
        with self._weights_lock:
            self._tokenizer, self._base, self._model = tokenizer, model, model
        for name, path in self.adapters.items():
            self.load_adapter(name, Path(path))
        self.activate_adapter(self.initial_adapter)

    @property
    def base_identity(self) -> BaseIdentity:
        """The loaded checkpoint's identity, computed once; adapters that record another are refused."""
        self._require_warm()
        if self._identity is None:
            self._identity = identify_checkpoint(self.model_path, self._tokenizer)
        return self._identity

    @property
    def active_adapter(self) -> str | None:
        """The adapter the next generation will use (`None`: the base model)."""
        with self._state_lock:
            return self._active

    @property
    def loaded_adapters(self) -> list[str]:
        """Names of the adapters held in memory."""
        with self._state_lock:
            return sorted(self._loaded)

    def load_adapter(self, name: str, path: Path) -> None:
        """Checks and loads a LoRA adapter next to the others, without activating it.

        :raises AdapterLoadError: the folder is incomplete, corrupt or made for another model; the model and
            the active adapter are left as they were.
        """
        self._require_warm()
        if not name or name in self._loaded:
            raise ValueError(
                f"adapter name {name!r} is empty or already loaded; unload it or pick a new name"
            )
        validate_adapter_dir(name, Path(path), self._base, self.base_identity)
        from peft import PeftModel  # heavy

        with self._weights_lock:
            if name in self.loaded_adapters:  # a concurrent call with the same name got here first
                raise ValueError(f"adapter name {name!r} is already loaded")
            try:
                if self._model is self._base:
                    with warnings.catch_warnings():
                        # peft 0.21 reads transformers 5's deprecated `is_gradient_checkpointing`; the
                        # FutureWarning it raises would be printed under every first answer.
                        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
                        self._model = PeftModel.from_pretrained(self._base, str(path), adapter_name=name)
                else:
                    result = self._model.load_adapter(str(path), adapter_name=name)
                    missing = [key for key in getattr(result, "missing_keys", []) if f".{name}." in key]
                    if missing:
                        self._model.delete_adapter(name)
                        raise AdapterLoadError(
                            f"adapter {name!r} at {path}: {len(missing)} LoRA weights missing"
                        )
            except AdapterLoadError:
                raise
            except Exception as error:  # peft raises many types; the caller needs one
                if self._model is not self._base and name in getattr(self._model, "peft_config", {}):
                    self._model.delete_adapter(name)
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise AdapterLoadError(f"adapter {name!r} at {path}: {reason}") from error
            self._model.eval()
            with self._state_lock:
                self._loaded[name] = Path(path)
        logger.info("Loaded LoRA adapter {name} from {path}", name=name, path=str(path))

    def activate_adapter(self, name: str | None) -> None:
        """Makes `name` (or the base model, for `None`) answer from the next generation on.

        Returns at once: a generation already running keeps the adapter it started with.
        """
        with self._state_lock:
            if name is not None and name not in self._loaded:
                raise ValueError(f"adapter {name!r} is not loaded (loaded: {sorted(self._loaded)})")
            previous, self._active = self._active, name
        if previous != name:
            logger.info("Active adapter: {previous} -> {name}", previous=previous, name=name)

    def unload_adapter(self, name: str) -> None:
        """Frees an adapter that is no longer active."""
        with self._weights_lock, self._state_lock:
            if name == self._active:
                raise ValueError(f"adapter {name!r} is active; activate another one first")
            if name not in self._loaded:
                return
            self._model.delete_adapter(name)
            del self._loaded[name]
            if not self._loaded:
                # peft cannot disable an adapter when none is left: go back to the plain model.
                self._base = self._model = self._model.unload()

    @component.output_types(replies=list[ChatMessage])
    def run(
        self,
        messages: list[ChatMessage],
        streaming_callback: Callable[[StreamingChunk], None] | None = None,
        generation_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, list[ChatMessage]]:
        """Writes one reply to `messages`, streaming it through `streaming_callback` as it is produced.

        :param generation_kwargs: per-request overrides: `max_new_tokens`, `temperature`, or any other
            keyword of transformers' `generate`.
        """
        self._require_warm()
        kwargs = dict(generation_kwargs or {})
        max_new_tokens = int(kwargs.pop("max_new_tokens", self.max_new_tokens))
        temperature = float(kwargs.pop("temperature", self.temperature))
        chat = [{"role": message.role.value, "content": message.text or ""} for message in messages]
        context = int(getattr(self._base.config, "max_position_embeddings", 2048))
        budget = max(64, context - max_new_tokens)
        if self.max_prompt_tokens:
            budget = min(budget, self.max_prompt_tokens)
        prompt_ids, truncated = fit_chat(self._tokenizer, chat, budget)

        with self._weights_lock:
            adapter = self.active_adapter
            with self._adapter_applied(adapter):
                started = time.perf_counter()
                completion_ids, text, first_token_at = self._generate(
                    prompt_ids, max_new_tokens, temperature, kwargs, streaming_callback
                )
                finished = time.perf_counter()
        eos = self._tokenizer.eos_token_id
        stopped = bool(completion_ids) and completion_ids[-1] == eos
        finish_reason = "stop" if stopped or len(completion_ids) < max_new_tokens else "length"
        meta = {
            "model": self.model_name,
            "adapter": adapter,
            "finish_reason": finish_reason,
            "prompt_truncated": truncated,
            "usage": {
                "prompt_tokens": len(prompt_ids),
                "completion_tokens": len(completion_ids),
                "total_tokens": len(prompt_ids) + len(completion_ids),
            },
            # Reading the prompt (up to the first token) and writing the rest, in seconds.
            "timings": {
                "prompt": round((first_token_at or finished) - started, 4),
                "completion": round(finished - (first_token_at or finished), 4),
            },
        }
        if streaming_callback is not None:
            streaming_callback(
                StreamingChunk(
                    content="",
                    meta=dict(meta),
                    component_info=ComponentInfo.from_component(self),
                    index=0,
                    finish_reason=finish_reason,
                )
            )
        return {"replies": [ChatMessage.from_assistant(text.strip(), meta=meta)]}

    def _require_warm(self) -> None:
        if self._model is None:
            raise RuntimeError("LocalChatGenerator was not warmed up; call warm_up() first")

    @contextlib.contextmanager
    def _adapter_applied(self, adapter: str | None) -> Iterator[None]:
        # Called with the weights lock held, so nothing else touches peft's notion of the active adapter.
        if self._model is self._base:
            yield
        elif adapter is None:
            with self._model.disable_adapter():
                yield
        else:
            self._model.set_adapter(adapter, inference_mode=True)
            yield

    def _generate(
        self,
        prompt_ids: list[int],
        max_new_tokens: int,
        temperature: float,
        extra: dict[str, Any],
        streaming_callback: Callable[[StreamingChunk], None] | None,
    ) -> tuple[list[int], str, float | None]:
        """The completion's ids and text, and when its first token was chosen (``Cancel``)."""
        import torch  # heavy
        from transformers import (  # heavy
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            StoppingCriteriaList,
        )

        input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=self._base.device)
        cancel = Cancel(pause=self.between_tokens)
        penalty = float(extra.pop("repetition_penalty", self.repetition_penalty))
        if penalty != 1.0:
            processor = RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=len(prompt_ids))
            extra["logits_processor"] = LogitsProcessorList([processor, *extra.get("logits_processor", [])])
        arguments: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "max_new_tokens": max_new_tokens,
            "pad_token_id": self._tokenizer.pad_token_id,
            "stopping_criteria": StoppingCriteriaList([cancel]),
            **({"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}),
            **extra,
        }
        if streaming_callback is None:
            with torch.inference_mode():
                output = self._model.generate(**arguments)
        else:
            output = generate_streaming(
                self._model,
                self._tokenizer,
                arguments,
                cancel=cancel,
                callback=streaming_callback,
                component_info=ComponentInfo.from_component(self),
            )
        completion_ids = output[0, input_ids.shape[1] :].tolist()
        text = self._tokenizer.decode(completion_ids, skip_special_tokens=True)
        return completion_ids, text, cancel.first_token_at
