"""Settings read every seed variable under its own name; bad values say what they accept."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalserve.errors import ConfigurationError
from evalserve.settings import Settings, load_settings
from tests.conftest import ROOT, load_script

SEED_VALUES = {
    # seed 000
    "MODEL_NAME": ("/models/gemma", "model_name", "/models/gemma"),
    "GPU_MEMORY_UTILIZATION": ("0.8", "gpu_memory_utilization", 0.8),
    "MAX_MODEL_LEN": ("1024", "max_model_len", 1024),
    "TENSOR_PARALLEL_SIZE": ("2", "tensor_parallel_size", 2),
    "DTYPE": ("bfloat16", "dtype", "bfloat16"),
    "HOST": ("127.0.0.1", "host", "127.0.0.1"),
    "PORT": ("8080", "port", 8080),
    "BATCH_SIZE": ("5", "batch_size", 5),
    "JOB_TTL_SECONDS": ("60", "job_ttl_seconds", 60),
    "MAX_CONCURRENT_JOBS": ("3", "max_concurrent_jobs", 3),
    "ENABLE_PREFIX_CACHING": ("false", "enable_prefix_caching", False),
    "BLOCK_SIZE": ("32", "block_size", 32),
    "MAX_NUM_SEQS": ("64", "max_num_seqs", 64),
    "COMPILATION_LEVEL": ("2", "compilation_level", 2),
    "CLEANUP_INTERVAL_SECONDS": ("30", "cleanup_interval_seconds", 30),
    "TIME_ESTIMATION_PER_ITEM": ("1.5", "time_estimation_per_item", 1.5),
    "SSE_POLLING_INTERVAL": ("0.5", "sse_polling_interval", 0.5),
    # seed 001
    "API_TOKEN": ("secret", "api_token", "secret"),
    "TEXT_GEN_API_TOKEN": ("other", "text_gen_api_token", "other"),
    "VLLM_ENDPOINT": ("http://vllm:8000/v1/completions", "vllm_endpoint",
                      "http://vllm:8000/v1/completions"),
    "REDIS_URL": ("redis://localhost:6379/0", "redis_url", "redis://localhost:6379/0"),
    "REDIS_PASSWORD": ("pw", "redis_password", "pw"),
    "API_PORT": ("8006", "api_port", 8006),
    "METRICS_PORT": ("9100", "metrics_port", 9100),
    # seed 002
    "DEVICE": ("cpu", "device", "cpu"),
    "MAX_NEW_TOKENS": ("512", "max_new_tokens", 512),
    "TEMPERATURE": ("0.2", "temperature", 0.2),
    "TOP_P": ("0.9", "top_p", 0.9),
    "REPEAT_PENALTY": ("1.015", "repeat_penalty", 1.015),
    "ALIGNSCORE_CKPT": ("/models/AlignScore-base.ckpt", "alignscore_ckpt",
                        Path("/models/AlignScore-base.ckpt")),
    "ALIGNSCORE_ROBERTA_DIR": ("/models/roberta-base", "alignscore_roberta_dir",
                               Path("/models/roberta-base")),
    # seed 003
    "MODEL_ID": ("YukinoStuki/qa", "model_id", "YukinoStuki/qa"),
    "MODEL_REVISION": ("v2", "model_revision", "v2"),
    "MODEL_DIR": ("./model", "model_dir", Path("./model")),
    "BATCH_MODE": ("1", "batch_mode", True),
    # ours
    "ENGINE": ("openai", "engine", "openai"),
    "DATA_DIR": ("/var/lib/evalserve", "data_dir", Path("/var/lib/evalserve")),
}


def test_every_seed_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for env, (raw, _, _) in SEED_VALUES.items():
        monkeypatch.setenv(env, raw)
    settings = load_settings()
    for env, (_, field, expected) in SEED_VALUES.items():
        assert getattr(settings, field) == expected, env


def test_defaults_are_the_embedded_service() -> None:
    settings = Settings()
    assert settings.engine == "transformers"
    assert settings.model_name is None
    assert settings.port == 8000
    assert settings.metrics_port == 8001
    assert settings.batch_size == 10
    assert settings.api_tokens == []


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("PORT", "eighty", "PORT='eighty'"),
        ("GPU_MEMORY_UTILIZATION", "1.5", "GPU_MEMORY_UTILIZATION='1.5'"),
        ("DTYPE", "int3", "DTYPE='int3'"),
        ("ENGINE", "llamafile", "ENGINE='llamafile'"),
        ("BATCH_MODE", "maybe", "BATCH_MODE='maybe'"),
        ("MAX_NUM_SEQS", "0", "MAX_NUM_SEQS='0'"),
    ],
)
def test_bad_value_names_the_variable_and_what_it_accepts(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = info.value.message
    assert expected in message
    # pydantic's explanation of what the field accepts follows the name
    assert len(message) > len(expected) + 20


def test_vllm_endpoint_selects_the_openai_engine_and_normalises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VLLM_ENDPOINT", "http://vllm:8000/v1/completions")
    settings = load_settings()
    assert settings.engine == "openai"
    assert settings.upstream_base_url == "http://vllm:8000/v1"
    assert load_settings(vllm_endpoint="http://h:1").upstream_base_url == "http://h:1/v1"
    assert load_settings(engine="transformers").engine == "transformers"


def test_api_port_is_used_when_port_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PORT", "8006")
    assert load_settings().port == 8006
    monkeypatch.setenv("PORT", "9000")
    assert load_settings().port == 9000


def test_tokens_accept_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "a, b")
    monkeypatch.setenv("TEXT_GEN_API_TOKEN", "c")
    assert load_settings().api_tokens == ["a", "b", "c"]


def test_cli_overrides_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    assert load_settings(port=7000).port == 7000
    assert load_settings(port=None).port == 9000


def test_dotenv_file_is_read_below_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("BATCH_SIZE=7\nPORT=9100\n")
    monkeypatch.setenv("PORT", "9200")
    settings = load_settings()
    assert settings.batch_size == 7
    assert settings.port == 9200


def test_env_example_and_readme_table_are_generated_from_the_settings() -> None:
    generator = load_script("gen_env_example")
    hint = "stale: run .venv/bin/python scripts/gen_env_example.py"
    assert (ROOT / ".env.example").read_text() == generator.env_example(), f".env.example is {hint}"
    readme = (ROOT / "README.md").read_text()
    assert f"{generator.BEGIN}\n{generator.settings_table()}\n{generator.END}" in readme, (
        f"README.md's configuration table is {hint}")


def test_alignscore_checkpoint_without_its_roberta_directory_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALIGNSCORE_CKPT", "/models/AlignScore-base.ckpt")
    with pytest.raises(ConfigurationError, match="ALIGNSCORE_ROBERTA_DIR"):
        load_settings()
    monkeypatch.setenv("ALIGNSCORE_ROBERTA_DIR", "/models/roberta-base")
    assert load_settings().alignscore_roberta_dir == Path("/models/roberta-base")


def test_a_default_budget_over_the_per_request_limit_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_TOKENS_PER_REQUEST", "64")
    monkeypatch.setenv("MAX_NEW_TOKENS", "65")
    with pytest.raises(ConfigurationError,
                       match="MAX_NEW_TOKENS=65 is over MAX_TOKENS_PER_REQUEST"):
        load_settings()
    monkeypatch.setenv("MAX_NEW_TOKENS", "64")
    assert load_settings().max_tokens_per_request == 64
