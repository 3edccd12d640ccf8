"""`evalserve.client.metrics` (seed 002's names, re-exported by `evalserve.client`) against
the real app (scripted engine) and against canned answers.

The client against a real server process and the real model: tests/e2e/test_metrics_api.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from evalserve import client as client_mod
from evalserve.client import EvalserveClient, EvalserveHTTPError
from evalserve.metrics import readability
from evalserve.server.app import build_app
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine

# the seed's names: O(riginals), H(umans), G(enerated)
O = ["The patient took aspirin for two weeks and the fever went down.",  # noqa: E741
     "Exercise lowers blood pressure in adults."]
G = ["The patient took aspirin. The fever went down.", "Exercise lowers blood pressure."]
H = ["The fever dropped after two weeks of aspirin.", "Adults can exercise to lower pressure."]
TARGETS = {
    **{m: {"mean": 0.5, "std": 0.1} for m in ("relevance", "factuality")},
    **{m: {"mean": 7.0, "std": 2.0} for m in ("fkgl", "smog", "dale_chall")},
}


@pytest.fixture
def app_client(settings: Settings) -> Iterator[EvalserveClient]:
    app = build_app(settings, engine=ScriptedEngine(lambda r: '{"score": 3}'))
    with TestClient(app) as http:
        yield EvalserveClient("http://testserver", http=http)


def test_seed_functions_are_aliases() -> None:
    assert client_mod.getLoss is client_mod.get_loss
    assert client_mod.getRelevance is client_mod.get_relevance
    assert client_mod.getFactuality is client_mod.get_factuality
    assert client_mod.getReadability is client_mod.get_readability


def test_metrics_through_the_app(app_client: EvalserveClient) -> None:
    rel = app_client.get_relevance(O, [O[0], G[1]])
    assert rel["f1"][0] == pytest.approx(1.0, abs=1e-4) and len(rel["f1"]) == 2
    fact = app_client.get_factuality(O, G)
    assert fact == {"scores": [0.5, 0.5], "mean": 0.5, "method": "llm_judge"}
    read = app_client.get_readability(G)
    assert read["fkgl"] == pytest.approx([s.fkgl for s in readability(G).scores])
    rouge = app_client.get_rouge(G, O)
    assert all(0 < f < 1 for f in rouge["f1"])


def test_get_loss_three_lists_uses_humans(app_client: EvalserveClient) -> None:
    body = app_client.get_loss(O, H, G, weights=[0.2, 0.2, 0.2, 0.2, 0.2])
    assert body["weights"] == dict.fromkeys(
        ["relevance", "factuality", "fkgl", "smog", "dale_chall"], 0.2)
    human_fkgl = [s.fkgl for s in readability(H).scores]
    assert body["targets"]["fkgl"]["mean"] == pytest.approx(sum(human_fkgl) / 2)


def test_get_loss_two_lists_reads_targets_json(app_client: EvalserveClient,
                                               tmp_path: Path) -> None:
    # conftest chdirs into tmp_path: ./targets.json is what `evalserve calibrate` writes
    with pytest.raises(EvalserveHTTPError) as info:
        app_client.get_loss(O, G, weights=[0.25, 0.25, 0.2, 0.15, 0.15])
    assert info.value.status == 422 and "texts_human" in info.value.message

    (tmp_path / "targets.json").write_text(json.dumps(TARGETS))
    body = app_client.get_loss(O, G, weights=[0.25, 0.25, 0.2, 0.15, 0.15])
    assert body["targets"]["fkgl"] == {"mean": 7.0, "std": 2.0}
    assert body["terms"]["factuality"] == [0.0, 0.0]  # 0.5 judged, target 0.5

    explicit = {**TARGETS, "fkgl": {"mean": 1.0, "std": 1.0}}
    body = app_client.get_loss(O, G, targets=explicit)
    assert body["targets"]["fkgl"] == {"mean": 1.0, "std": 1.0}


def test_server_errors_carry_the_envelope(app_client: EvalserveClient) -> None:
    with pytest.raises(EvalserveHTTPError) as info:
        app_client.get_relevance(["a", "b"], ["a"])
    err = info.value
    assert err.status == 422 and err.code == "invalid_input"
    assert "texts_original" in err.message and "texts_generated" in err.message
    with pytest.raises(EvalserveHTTPError, match="weights"):
        app_client.get_loss(O, H, G, weights=[1.0])


def test_defaults_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"scores": [1.0], "mean": 1.0, "method": "llm_judge"})

    monkeypatch.setenv("METRICS_URL", "http://metrics.example:8001/")
    monkeypatch.setenv("API_TOKEN", "tok1, tok2")
    c = EvalserveClient()
    assert c.base_url == "http://metrics.example:8001" and c.token == "tok1"
    c._http = httpx.Client(base_url=c.base_url, transport=httpx.MockTransport(handler),
                           headers={"Authorization": "Bearer tok1"})
    assert c.get_factuality(["a"], ["a"])["method"] == "llm_judge"
    assert str(seen[0].url) == "http://metrics.example:8001/metrics/factuality"
    assert seen[0].headers["authorization"] == "Bearer tok1"
    assert json.loads(seen[0].content) == {"texts_original": ["a"], "texts_generated": ["a"]}

    monkeypatch.setenv("EVALSERVE_URL", "http://main:8000")
    assert EvalserveClient().base_url == "http://main:8000"


def test_non_envelope_errors_and_unreachable_server() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(502, text="bad gateway"))
    c = EvalserveClient("http://x", http=httpx.Client(base_url="http://x", transport=transport))
    with pytest.raises(EvalserveHTTPError, match="502") as info:
        c.get_readability(["a"])
    assert info.value.status == 502

    with EvalserveClient("http://127.0.0.1:9", timeout=2) as dead:
        with pytest.raises(EvalserveHTTPError, match="cannot reach evalserve") as info:
            dead.get_readability(["a"])
    assert info.value.status == 0


def test_calibrate_targets_then_two_list_loss(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              app_client: EvalserveClient) -> None:
    from evalserve.engines import registry

    monkeypatch.setattr(registry, "create_engine",
                        lambda settings: ScriptedEngine(lambda r: '{"score": 5}'))
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"original": o, "human": h}) + "\n" for o, h in zip(O, H)))
    seen: list[tuple[int, int]] = []
    targets = client_mod.calibrateTargets(path=data, save_to="targets.json", subset=1.0,
                                          chunk_size=1, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 2), (2, 2)]
    assert targets["factuality"] == {"mean": 1.0, "std": 0.0}
    assert json.loads((tmp_path / "targets.json").read_text()) == targets
    body = app_client.get_loss(O, G)  # reads ./targets.json written above
    assert body["targets"]["fkgl"]["mean"] == pytest.approx(targets["fkgl"]["mean"])
    assert body["targets"]["factuality"]["mean"] == 1.0


def test_the_public_names_are_pinned() -> None:
    # seed 002's training code imports these from `evalserve.client`; removing one breaks it
    names = ("DEFAULT_URL DEFAULT_TARGETS_FILE EvalserveClient EvalserveHTTPError "
             "calibrate_targets calibrateTargets get_factuality get_loss get_readability "
             "get_relevance get_rouge generate_summary getFactuality getLoss getReadability "
             "getRelevance").split()
    assert sorted(client_mod.__all__) == sorted(names)
    assert all(getattr(client_mod, name) is not None for name in names)
    assert client_mod.EvalserveHTTPError.__module__ == "evalserve.client.http"


@pytest.mark.parametrize(("content", "fragment"), [
    (None, "not found: run `evalserve calibrate` first"),
    ("{oops", "is not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
])
def test_a_bad_targets_file_fails_before_any_request(tmp_path: Path, content: str | None,
                                                     fragment: str) -> None:
    from evalserve.errors import InvalidInputError

    path = tmp_path / "mine.json"
    if content is not None:
        path.write_text(content)
    transport = httpx.MockTransport(lambda r: pytest.fail("no request should be sent"))
    c = EvalserveClient("http://x", http=httpx.Client(base_url="http://x", transport=transport))
    with pytest.raises(InvalidInputError, match=fragment):
        c.get_loss(O, G, targets=path)
