"""The `UPSTREAMS_FILE` schema: defaults, `${VAR}` expansion, and errors that name the line and
the field to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalserve.engines.router import load_upstreams
from evalserve.errors import ConfigurationError

EXAMPLE = """\
models:
  - name: judge-large
    endpoints:
      - url: http://vllm-a:8000/v1/
        api_key: ${VLLM_KEY}
        upstream_model: meta-llama/Llama-3.1-8B-Instruct
        weight: 2
        max_concurrency: 8
      - url: http://vllm-b:8000/v1/chat/completions
    fallbacks: [judge-small]
  - name: judge-small
    endpoints:
      - url: http://llama-cpp:8080/v1
        api_key: ${SMALL_KEY:-none}
    rate_limit: 30/minute
health_check_interval: 5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "upstreams.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        load_upstreams(write(tmp_path, text))
    return info.value.message


def test_the_example_loads_with_its_defaults(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_KEY", "secret-a")
    monkeypatch.delenv("SMALL_KEY", raising=False)
    config = load_upstreams(write(tmp_path, EXAMPLE))
    large, small = config.models
    assert config.default == "judge-large" and config.health_check_interval == 5
    first, second = large.endpoints
    assert (first.url, first.api_key, first.weight, first.max_concurrency) == (
        "http://vllm-a:8000/v1", "secret-a", 2.0, 8)
    assert second.url == "http://vllm-b:8000/v1"  # an endpoint path is cut to the API root
    assert (second.weight, second.max_concurrency, second.upstream_model) == (1.0, 64, None)
    assert large.upstream_models() == ["meta-llama/Llama-3.1-8B-Instruct", "judge-large"]
    assert large.fallbacks == ["judge-small"]
    assert small.endpoints[0].api_key == "none" and small.rate_limit == "30/minute"


def test_default_model_is_the_named_one(tmp_path: Path) -> None:
    text = EXAMPLE.replace("${VLLM_KEY}", "k") + "default_model: judge-small\n"
    assert load_upstreams(write(tmp_path, text)).default == "judge-small"


def test_an_unset_variable_names_itself_and_its_line(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_KEY", raising=False)
    message = error_of(tmp_path, EXAMPLE)
    assert "line 5: models[0].endpoints[0].api_key: environment variable VLLM_KEY is not " \
           "set" in message
    assert "${VLLM_KEY:-default}" in message


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("weight: 2", "weight: 0", "line 7: models[0].endpoints[0].weight: Input should be "
                               "greater than 0"),
    ("weight: 2", "wieght: 2", "line 7: models[0].endpoints[0].wieght: Extra inputs are not "
                               "permitted"),
    ("max_concurrency: 8", "max_concurrency: lots", "line 8: models[0].endpoints[0]."
                                                    "max_concurrency: Input should be a valid "
                                                    "integer"),
    ("[judge-small]", "[judge-smal]", "line 10: models[0].fallbacks[0]: 'judge-smal' is not a "
                                      "routed model; routed: judge-large, judge-small"),
    ("[judge-small]", "[judge-large]", "line 10: models[0].fallbacks[0]: model 'judge-large' "
                                       "cannot be its own fallback"),
    ("name: judge-small", "name: judge-large", "line 11: models[1].name: model 'judge-large' "
                                               "is listed twice (also models[0])"),
    ("http://llama-cpp:8080/v1", "llama-cpp:8080", "line 13: models[1].endpoints[0].url: "
                                                   "Value error, 'llama-cpp:8080' is not an "
                                                   "http(s) URL"),
    ("30/minute", "thirty a minute", "line 15: models[1].rate_limit: Value error, 'thirty a "
                                     "minute' is not a rate"),
    ("health_check_interval: 5", "health_check_interval: -1", "line 16: "
                                                              "health_check_interval: Input "
                                                              "should be greater than 0"),
    ("health_check_interval: 5", "default_model: judge", "line 16: default_model: 'judge' is "
                                                         "not a routed model"),
    ("      - url: http://llama-cpp:8080/v1\n        api_key: ${SMALL_KEY:-none}\n",
     "      []\n", "line 12: models[1].endpoints: List should have at least 1 item"),
    ("  - name: judge-small\n", "  - nam: judge-small\n", "line 11: models[1].name: Field "
                                                          "required"),
])
def test_errors_name_the_line_and_the_field(tmp_path: Path, old: str, new: str,
                                            expected: str) -> None:
    text = EXAMPLE.replace("${VLLM_KEY}", "k")
    assert old in text
    message = error_of(tmp_path, text.replace(old, new, 1))
    assert f"UPSTREAMS_FILE {tmp_path / 'upstreams.yaml'}, {expected}" in message


def test_an_api_key_never_appears_in_an_error(tmp_path: Path) -> None:
    text = EXAMPLE.replace("${VLLM_KEY}", "s3cr3t-key").replace("weight: 2", "weight: [2]")
    message = error_of(tmp_path, text)
    assert "weight" in message and "s3cr3t" not in message


@pytest.mark.parametrize(("text", "expected"), [
    ("models:\n  - name: a\n   endpoints: []\n", "line 3: not valid YAML"),
    ("- a\n- b\n", "expected a mapping with `models:` at the top"),
    ("", "expected a mapping with `models:` at the top"),
    ("models: []\n", "line 1: models: List should have at least 1 item"),
])
def test_malformed_files_say_what_is_wrong(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="UPSTREAMS_FILE .*nope.yaml cannot be read"):
        load_upstreams(tmp_path / "nope.yaml")


def test_the_shipped_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_KEY", "k")
    config = load_upstreams(Path(__file__).parents[3] / "examples" / "upstreams.yaml")
    assert [m.name for m in config.models] == ["judge-large", "judge-small"]
    assert config.models[1].endpoints[0].api_key == "none"
    assert config.models[0].endpoints[1].timeout == 300
