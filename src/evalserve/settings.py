"""Settings: one class, read from the environment under the seeds' variable names.

Built by `load_settings()` in `main`/`build_app(settings)` and passed down; never created at
import. Precedence: explicit arguments (CLI) > environment > `.env` > default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from evalserve.errors import ConfigurationError

__all__ = ["Settings", "load_settings"]


class Settings(BaseSettings):
    """Every knob of evalserve. The environment variable is the field name in upper case."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        protected_namespaces=(),
        validate_default=True,
        use_attribute_docstrings=True,
    )

    # --- engine selection (ours) ---
    engine: Literal["transformers", "openai", "vllm"] = "transformers"
    """Which engine serves generations: `transformers` (in-process, the default), `openai`
    (any OpenAI-compatible upstream such as `vllm serve`), or `vllm` (in-process; optional extra).
    When unset and `VLLM_ENDPOINT` is set, `openai` is chosen."""
    data_dir: Path = Path("./data")
    """Where the job database, converted-model cache and MLflow store live."""
    model_cache_dir: Path | None = None
    """Where converted GGUF models are kept; unset: `DATA_DIR/models`."""

    # --- seed 000 (model and vLLM tuning; vLLM-only knobs are passed on to an in-process vLLM) ---
    model_name: str | None = None
    """Model to serve: a local Hugging Face directory, a `.gguf` file, or (engines `openai` and
    `vllm`) a model id. Unset: the bundled SmolLM2-135M-Instruct."""
    gpu_memory_utilization: float = Field(0.90, gt=0.0, le=1.0)
    """vLLM only: fraction of GPU memory vLLM may take."""
    max_model_len: int = Field(2048, ge=64)
    """Longest prompt + output in tokens; longer prompts are rejected."""
    tensor_parallel_size: int = Field(1, ge=1)
    """vLLM only: GPUs to shard the model over."""
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    """Weights dtype: `auto` is bfloat16 on CUDA and on CPUs with native bf16 (AVX512-BF16,
    AMX), float32 elsewhere."""
    host: str = "0.0.0.0"
    """Address the HTTP server binds."""
    port: int = Field(8000, ge=1, le=65535)
    """HTTP port."""
    batch_size: int = Field(10, ge=1)
    """Results grouped per SSE `batch_complete` event (not an inference batch)."""
    job_ttl_seconds: int = Field(3600, ge=1)
    """Jobs finished longer ago than this are deleted."""
    max_concurrent_jobs: int = Field(5, ge=1)
    """Jobs graded at the same time; later ones wait, queued."""
    enable_prefix_caching: bool = True
    """Reuse the keys/values of prompt prefixes shared by many requests (a rubric's
    instructions and examples), in the transformers engine and in vLLM."""
    block_size: int = Field(16, ge=1)
    """vLLM only: KV-cache block size."""
    max_num_seqs: int = Field(32, ge=1)
    """Most sequences decoded together (the engine's batch capacity)."""
    interactive_reserve: int = Field(4, ge=0)
    """Decode slots of the embedded engine that job items leave free, so that direct requests
    (`/v1`, `/predict`, `/generate`) start at once while jobs keep the engine busy (jobs keep
    at least one slot)."""
    compilation_level: int = Field(0, ge=0, le=3)
    """vLLM only: torch.compile level."""
    cleanup_interval_seconds: int = Field(300, ge=1)
    """How often expired jobs are swept."""
    time_estimation_per_item: float = Field(2.0, ge=0.0)
    """Seconds per item assumed for the ETA before the first result is measured."""
    sse_polling_interval: float = Field(1.0, gt=0.0)
    """Seconds between checks of a stream's job state; keep-alive pings go every 15 of these."""

    # --- seed 001 (gateway) ---
    api_token: str | None = None
    """Bearer token(s), comma-separated. When set, every route but the health routes needs one."""
    text_gen_api_token: str | None = None
    """More accepted bearer tokens, comma-separated."""
    vllm_endpoint: str | None = None
    """Upstream OpenAI-compatible server, e.g. `http://vllm:8000/v1` (a path ending in
    `/v1/completions` is accepted and trimmed)."""
    redis_url: str | None = None
    """Redis shared by replicas for the response cache and the rate-limit windows (jobs and
    their events stay in the job store)."""
    redis_password: str | None = None
    """Password for `REDIS_URL` when the URL carries none."""
    api_port: int | None = Field(None, ge=1, le=65535)
    """Seed 001's name for the API port; used when `PORT` is not set."""
    metrics_port: int = Field(8001, ge=0, le=65535)
    """Separate Prometheus exposition port; 0 disables it (`GET /metrics` stays)."""

    # --- seed 002 (generation defaults, metrics) ---
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the in-process model runs: `auto` picks CUDA when a GPU is present."""
    max_new_tokens: int = Field(256, ge=1)
    """Default output budget for `/generate` and `/predict`."""
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    """Default sampling temperature for `/generate` and `/predict` (0 is greedy)."""
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    """Default nucleus-sampling mass for `/generate` and `/predict`."""
    repeat_penalty: float = Field(1.015, gt=0.0)
    """Default repetition penalty for `/generate` and `/predict` (1 is none)."""
    alignscore_ckpt: Path | None = None
    """AlignScore `.ckpt`; without it factuality is judged by the LLM."""
    alignscore_roberta_dir: Path | None = None
    """Local RoBERTa directory (tokenizer + config) matching the AlignScore checkpoint."""
    bertscore_model_dir: Path | None = None
    """Local encoder for BERTScore; unset: the bundled all-MiniLM-L6-v2."""
    loss_targets: Path | None = None
    """Calibration targets JSON (`evalserve calibrate`) used by `POST /loss` when a request
    sends neither `texts_human` nor `targets`."""

    # --- seed 003 (grader contract) ---
    model_id: str | None = None
    """Model id for `evalserve download` and, when downloaded, the model served."""
    model_revision: str = "master"
    """Branch, tag or commit for `evalserve download`."""
    model_dir: Path = Path("./model")
    """Where `evalserve download` puts models (`MODEL_DIR/MODEL_ID`)."""
    batch_mode: bool = False
    """`POST /predict` also takes a list of prompts; `GET /` answers `{"status": "batch"}`."""
    warmup_file: Path | None = None
    """JSONL of `{"prompt"}` lines generated once at start-up."""
    warmup_max_prompts: int = Field(32, ge=1)
    """Warm-up generates for at most this many lines of `WARMUP_FILE`, as one batch."""
    warmup_max_tokens: int = Field(16, ge=1)
    """Output budget of each warm-up generation."""
    model_source: Literal["hf", "modelscope"] = "hf"
    """Hub `evalserve download` fetches from: `hf` (Hugging Face) or `modelscope`."""

    # --- ours ---
    openai_api_key: str | None = None
    """Key sent to the upstream of the `openai` engine."""
    upstream_timeout: float = Field(120.0, gt=0)
    """Seconds to wait for the upstream of the `openai` engine."""
    upstream_retries: int = Field(2, ge=0)
    """Retries (with backoff) on upstream connection errors, 429 and 5xx."""
    rubrics_dir: Path | None = None
    """Directory of extra rubric YAML files."""
    max_items_per_job: int = Field(100_000, ge=1)
    """Most items one `POST /evaluate` may carry."""
    max_field_chars: int = Field(20_000, ge=1)
    """Most characters in one field of an item or prompt."""
    cache_ttl_seconds: int = Field(3600, ge=0)
    """Response cache lifetime; 0 disables the cache."""
    cache_max_entries: int = Field(10_000, ge=1)
    """Size of the in-process response cache (without `REDIS_URL`)."""
    rate_limits: str | None = None
    """Per-model overrides, e.g. `my-model=30/minute;other=5/second`."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Server log verbosity."""
    mlflow_tracking_uri: str | None = None
    """Where tracked evaluations (`evaluate --mlflow`, jobs with `track`) are logged, e.g.
    `http://mlflow:5000`; unset: `sqlite:///DATA_DIR/mlflow.db` (artifacts in
    `DATA_DIR/mlartifacts`)."""

    # --- sharing and bounds (ours) ---
    admin_api_token: str | None = None
    """Admin bearer token(s), comma-separated: accepted like `API_TOKEN`, and they see and
    manage every caller's jobs (other tokens see only their own)."""
    cache_shared: bool = False
    """Share cached `/v1` responses between callers; by default each API key has its own."""
    max_request_bytes: int = Field(32 * 2**20, ge=1024)
    """Largest request body in bytes; a larger one answers 413."""
    max_prompts_per_request: int = Field(256, ge=1)
    """Most prompts in one `/v1/completions` list (batch `/predict`: `MAX_PREDICT_PROMPTS`)."""
    max_sequences_per_request: int = Field(1024, ge=1)
    """Most sequences one request may ask for: prompts × `n`."""
    max_texts_per_request: int = Field(10_000, ge=1)
    """Most texts (or pairs) in one metrics request."""
    item_rate_limit: str = "100000/hour"
    """Items a caller may submit to `POST /evaluate` per window, e.g. `100000/hour`."""
    predict_rate_limit: str = "100000/hour"
    """Prompts a caller may send to `/predict` and `/generate` per window (seed 003 graders
    may push every question at once, so this is not the `/v1` model tier)."""
    max_predict_prompts: int = Field(10_000, ge=1)
    """Most prompts in one batch `/predict` (`BATCH_MODE=1`)."""
    text_rate_limit: str = "100000/hour"
    """Texts a caller may send to the metrics routes per window."""
    tokens_per_minute: int = Field(0, ge=0)
    """Prompt + completion tokens a caller may use per minute and model on `/v1`; 0: no limit."""
    rate_limit_max_buckets: int = Field(100_000, ge=1)
    """Most rate-limit windows kept in memory; the least recently used go first."""
    max_queued_jobs_per_caller: int = Field(20, ge=1)
    """Most queued jobs one caller may have; another submission answers 429."""
    max_job_attempts: int = Field(3, ge=1)
    """A job that was running when the process died this many times is failed, not resumed."""
    item_retries: int = Field(3, ge=0)
    """Retries of an item whose engine call failed transiently (connection, 429, 5xx,
    timeout), with exponential backoff and jitter; then the item is stored as an error."""
    item_retry_backoff_seconds: float = Field(0.5, ge=0.0)
    """First backoff of an item retry; doubled each retry, with jitter."""
    cache_max_bytes: int = Field(256 * 2**20, ge=0)
    """Most bytes of response bodies the in-process cache holds."""
    metrics_host: str | None = None
    """Address the `METRICS_PORT` server binds (e.g. `127.0.0.1`); unset: `HOST`."""
    # --- scale-out (ours) ---
    database_url: str | None = None
    """PostgreSQL URL (`postgresql://user:pass@host:5432/db`) holding jobs, items, results and
    events, shared by every replica; unset: SQLite at `DATA_DIR/evalserve.db`."""
    database_pool_size: int = Field(10, ge=1)
    """Most PostgreSQL connections one replica holds."""
    upstreams_file: Path | None = None
    """YAML file of routed models and their OpenAI-compatible endpoints (key, weight, max
    concurrency, fallbacks); set, it replaces `ENGINE`/`VLLM_ENDPOINT`."""
    replica_id: str | None = None
    """This replica's name in metrics labels, traces and job leases; unset: `<hostname>-<pid>`."""
    job_lease_seconds: float = Field(30.0, gt=0.0)
    """A replica runs a job only while it holds the job's lease, renewed every third of this;
    a job whose lease ran out (its replica died) is taken over by another replica."""
    otel_exporter_otlp_endpoint: str | None = None
    """OTLP/HTTP collector (e.g. `http://collector:4318`): traces are exported there; unset:
    no tracing."""
    otel_service_name: str = "evalserve"
    """`service.name` of the exported traces."""
    max_tokens_per_request: int = Field(0, ge=0)
    """Most tokens one request may ask to generate (`max_tokens`, `max_completion_tokens`,
    `max_new_tokens`); a larger ask answers 422. 0: up to the model's context."""

    @model_validator(mode="after")
    def _resolve_defaults(self) -> Settings:
        if self.vllm_endpoint and "engine" not in self.model_fields_set:
            self.engine = "openai"
        if self.api_port is not None and "port" not in self.model_fields_set:
            self.port = self.api_port
        if 0 < self.max_tokens_per_request < self.max_new_tokens:
            raise ValueError(
                f"MAX_NEW_TOKENS={self.max_new_tokens} is over MAX_TOKENS_PER_REQUEST="
                f"{self.max_tokens_per_request}: the default budget must fit the limit")
        if self.alignscore_ckpt and not self.alignscore_roberta_dir:
            raise ValueError(
                "ALIGNSCORE_CKPT needs ALIGNSCORE_ROBERTA_DIR: a local roberta-base (or "
                "roberta-large, for AlignScore-large) directory with its tokenizer and config, "
                "which the checkpoint does not contain"
            )
        return self

    @property
    def api_tokens(self) -> list[str]:
        """Every accepted bearer token (the admin tokens included)."""
        raw = ",".join(t for t in (self.api_token, self.text_gen_api_token,
                                   self.admin_api_token) if t)
        return [t.strip() for t in raw.split(",") if t.strip()]

    @property
    def admin_tokens(self) -> list[str]:
        """Bearer tokens that see and manage every caller's jobs."""
        return [t.strip() for t in (self.admin_api_token or "").split(",") if t.strip()]

    @property
    def upstream_base_url(self) -> str | None:
        """`VLLM_ENDPOINT` normalised to the `/v1` base URL."""
        if not self.vllm_endpoint:
            return None
        url = self.vllm_endpoint.rstrip("/")
        for suffix in ("/chat/completions", "/completions"):
            if url.endswith(suffix):
                url = url[: -len(suffix)]
        return url if url.endswith("/v1") else url + "/v1"


def load_settings(**overrides: object) -> Settings:
    """Build settings; an invalid value raises a message naming the variable and what it takes."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            if not err["loc"]:  # a rule across several settings
                lines.append(err["msg"].removeprefix("Value error, "))
                continue
            name = str(err["loc"][0]).upper()
            lines.append(f"{name}={err.get('input')!r}: {err['msg']}")
        raise ConfigurationError("invalid configuration: " + "; ".join(lines)) from None
