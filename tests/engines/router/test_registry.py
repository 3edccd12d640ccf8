"""`UPSTREAMS_FILE` selects the router, whatever `ENGINE` and `VLLM_ENDPOINT` say."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalserve.engines.registry import create_engine
from evalserve.engines.router import RouterEngine
from evalserve.errors import ConfigurationError
from evalserve.settings import load_settings


def test_upstreams_file_builds_the_router(tmp_path: Path) -> None:
    path = tmp_path / "upstreams.yaml"
    path.write_text("models:\n  - name: judge\n    endpoints: [{url: 'http://a:8000/v1'}]\n")
    engine = create_engine(load_settings(upstreams_file=path, vllm_endpoint="http://v:1/v1",
                                         upstream_timeout=7))
    assert isinstance(engine, RouterEngine) and engine.model_id == "judge"
    endpoint = engine.endpoints[0]
    assert (endpoint.engine.timeout, endpoint.engine.retries) == (7, 0)


def test_a_bad_upstreams_file_fails_at_build_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "upstreams.yaml"
    path.write_text("models:\n  - name: judge\n    endpoints: [{url: 'http://a/v1', "
                    "weight: -1}]\n")
    with pytest.raises(ConfigurationError, match=r"line 3: models\[0\]\.endpoints\[0\]\."
                                                 "weight"):
        create_engine(load_settings(upstreams_file=path))
