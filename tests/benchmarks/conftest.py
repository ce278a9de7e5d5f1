"""Fixtures for the benchmark tests: the small LoRA adapter trained on the test model."""

from tests.retrieval.model_fixtures import lora_adapter_dir  # noqa: F401
