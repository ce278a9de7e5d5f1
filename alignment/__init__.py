"""Turning feedback into better answers: datasets, TRL training, the evaluation gate, adapters."""
