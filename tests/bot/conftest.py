"""Fixtures for the bot tests: stand-ins for a vLLM server and an Elasticsearch server on 127.0.0.1."""

from tests.bot.fake_vllm import vllm  # noqa: F401
from tests.retrieval.stores.es_stub import fake_es  # noqa: F401
