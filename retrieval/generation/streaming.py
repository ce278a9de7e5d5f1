"""Running transformers' `generate` so that its text reaches a Haystack streaming callback as it is made.

A Slack answer is edited in place while the model writes, so the first words should appear after a second,
not after the whole reply. `generate` runs in a worker thread that feeds a `TextIteratorStreamer`; the
caller's thread turns its text into `StreamingChunk`s. If the callback fails (Slack unreachable, the
message deleted), generation is stopped instead of running on, holding the model, for an answer nobody
will see.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from haystack.dataclasses import ComponentInfo, StreamingChunk


class Cancel:
    """A stopping criterion for `generate` that ends generation once `event` is set.

    `pause`, if given, is called at every step, in generate's thread: a caller with more urgent work in
    the same process (a Slack acknowledgement) can make generation wait there, between two tokens. The
    first step's time splits an answer's latency into reading the prompt and writing the answer.
    """

    def __init__(self, pause: Callable[[], object] | None = None) -> None:
        self.event = threading.Event()
        self.pause = pause
        self.started_at = time.perf_counter()
        # Set at the first step, i.e. once the prompt is processed and the first token chosen.
        self.first_token_at: float | None = None

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch  # heavy

        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        if self.pause is not None:
            self.pause()

        stop = self.event.is_set()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


def generate_streaming(
    model: Any,
    tokenizer: Any,
    arguments: dict[str, Any],
    *,
    cancel: Cancel,
    callback: Callable[[StreamingChunk], None],
    component_info: ComponentInfo | None = None,
) -> Any:
    """Calls `model.generate(**arguments)` and passes its text to `callback` chunk by chunk.

    `arguments` must include `cancel` among its stopping criteria. Returns what `generate` returned and
    re-raises, in the caller's thread, an error from either side.
    """
    import torch  # heavy
    from transformers import TextIteratorStreamer  # heavy

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            with torch.inference_mode():
                result["output"] = model.generate(**arguments, streamer=streamer)
        except BaseException as error:  # handed to the caller's thread below
            result["error"] = error
            streamer.end()

    worker = threading.Thread(target=work, name="generate-streaming", daemon=True)
    worker.start()
    first = True
    try:
        for text in streamer:
            if text:  # the streamer yields "" while a word is still incomplete
                callback(StreamingChunk(content=text, component_info=component_info, index=0, start=first))
                first = False
    except BaseException:
        cancel.event.set()
        raise
    finally:
        worker.join()
    if "error" in result:
        raise result["error"]
    return result["output"]
