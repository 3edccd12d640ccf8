"""`evalserve serve` on the bundled model, and the foundation CLI commands."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.conftest import MODEL_CACHE
from tests.e2e.server import ServerProcess


def test_health_of_the_real_server(live_server: ServerProcess) -> None:
    body = httpx.get(live_server.url + "/health").json()
    assert body["status"] == "healthy"
    assert body["model_loaded"] is True
    assert body["gpu_available"] is False
    assert isinstance(body["active_jobs"], int)
    assert body["model"] == "SmolLM2-135M-Instruct"


def _cli(*args: str, tmp_path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evalserve", *args], capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path),
             "MODEL_CACHE_DIR": str(MODEL_CACHE), **(env or {})},
    )


def test_generate_streams_an_answer(tmp_path) -> None:
    done = _cli("generate", "What is the capital of France?", "--max-tokens", "16",
                tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout


def test_models_lists_the_bundled_model(tmp_path) -> None:
    done = _cli("models", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SmolLM2-135M-Instruct"


def test_bad_setting_stops_with_a_clear_message(tmp_path) -> None:
    done = _cli("models", tmp_path=tmp_path, env={"MAX_NUM_SEQS": "lots"})
    assert done.returncode == 2
    assert "MAX_NUM_SEQS='lots'" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_model_path_says_how_to_fix(tmp_path) -> None:
    done = _cli("models", "--model", str(tmp_path / "nowhere"), tmp_path=tmp_path)
    assert done.returncode == 2
    assert "evalserve download" in done.stderr
