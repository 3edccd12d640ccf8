"""Python client of the metric routes (seed 002's `metrics_client`), over HTTP with httpx.

    from evalserve.client import getLoss, getRelevance, getFactuality, getReadability

    O = ["orig1", "orig2"]
    G = ["gen1", "gen2"]
    getLoss(O, G, weights=[0.25, 0.25, 0.2, 0.15, 0.15])
    getRelevance(O, G); getFactuality(O, G); getReadability(G)

The server is `base_url` if given, else `$EVALSERVE_URL`, else `$METRICS_URL`, else
`http://localhost:8000`; the bearer token is `token` if given, else `$API_TOKEN` (the first one
when it is a comma-separated list). Every function returns the route's JSON body as a dict
(shapes in `docs/metrics-api.md`). A server error raises `EvalserveHTTPError` carrying the
envelope's message, type and code and the HTTP status.

`get_loss` takes the seed's two forms: ``get_loss(O, H, G, weights=...)`` (human texts give
the targets) and ``getLoss(O, G, weights=...)`` (no human texts: the targets are `targets`
if given, else the file ``./targets.json`` written by ``evalserve calibrate`` if it exists,
else the server's `LOSS_TARGETS`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from evalserve.client.http import auth_headers, default_token, default_url, send, sync_client
from evalserve.metrics.targets import read_targets_file

__all__ = [
    "DEFAULT_TARGETS_FILE",
    "EvalserveClient",
    "calibrate_targets",
    "calibrateTargets",
    "get_factuality",
    "get_loss",
    "get_readability",
    "get_relevance",
    "get_rouge",
    "generate_summary",
    "getFactuality",
    "getLoss",
    "getReadability",
    "getRelevance",
]

log = logging.getLogger(__name__)

#: Read by `get_loss` without human texts or targets (the seed's `calibrateTargets` output).
DEFAULT_TARGETS_FILE = Path("targets.json")


class EvalserveClient:
    """A connection to one evalserve server (keeps its HTTP connections open).

    Args:
        base_url: server URL; default `$EVALSERVE_URL`, `$METRICS_URL`, `http://localhost:8000`.
        token: bearer token; default `$API_TOKEN`.
        timeout: seconds to wait for an answer (metrics over many texts take a while).
        http: an `httpx.Client` to use instead of a new one (tests, custom transports).
    """

    def __init__(self, base_url: str | None = None, token: str | None = None,
                 timeout: float = 600.0, http: httpx.Client | None = None) -> None:
        self.base_url = (base_url or default_url()).rstrip("/")
        self.token = token if token is not None else default_token()
        if http is None:
            self._http = sync_client(self.base_url, self.token, timeout=timeout)
        else:
            self._http = http
            self._http.headers.update(auth_headers(self.token))

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> EvalserveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return send(self._http, "POST", path, json=body).json()

    # --- seed 002 routes ------------------------------------------------------------------
    def get_relevance(self, originals: Sequence[str], generated: Sequence[str]) -> dict[str, Any]:
        """`POST /metrics/relevance`: BERTScore `precision`, `recall`, `f1` lists and `mean`."""
        return self._post("/metrics/relevance", {
            "texts_original": list(originals), "texts_generated": list(generated)})

    def get_factuality(self, originals: Sequence[str], generated: Sequence[str]) -> dict[str, Any]:
        """`POST /metrics/factuality`: `scores` in [0, 1], `mean` and `method`."""
        return self._post("/metrics/factuality", {
            "texts_original": list(originals), "texts_generated": list(generated)})

    def get_readability(self, texts: Sequence[str], lang: str | None = None) -> dict[str, Any]:
        """`POST /metrics/readability`: `fkgl`, `smog`, `dale_chall` lists and `mean`."""
        body: dict[str, Any] = {"texts": list(texts)}
        if lang is not None:
            body["lang"] = lang
        return self._post("/metrics/readability", body)

    def get_rouge(self, predictions: Sequence[str], references: Sequence[str],
                  lang: str = "en", recipe: str = "standard") -> dict[str, Any]:
        """`POST /metrics/rouge`: ROUGE-L `precision`, `recall`, `f1` lists and `mean`."""
        return self._post("/metrics/rouge", {
            "predictions": list(predictions), "references": list(references),
            "lang": lang, "recipe": recipe})

    def get_loss(
        self,
        originals: Sequence[str],
        humans_or_generated: Sequence[str],
        generated: Sequence[str] | None = None,
        *,
        weights: Sequence[float] | None = None,
        targets: Mapping[str, Any] | str | Path | None = None,
        lang: str | None = None,
    ) -> dict[str, Any]:
        """`POST /loss`. ``get_loss(O, H, G)`` or ``get_loss(O, G)`` (targets: module doc).

        Returns the body: `loss` (mean), `losses`, `terms`, `metrics`, `targets`, `weights`,
        `factuality_method`.
        """
        if generated is None:
            humans, gens = None, humans_or_generated
        else:
            humans, gens = humans_or_generated, generated
        body: dict[str, Any] = {"texts_original": list(originals), "texts_generated": list(gens)}
        if humans is not None:
            body["texts_human"] = list(humans)
        if targets is None and humans is None and DEFAULT_TARGETS_FILE.is_file():
            log.info("using calibration targets from %s", DEFAULT_TARGETS_FILE.resolve())
            targets = DEFAULT_TARGETS_FILE
        if targets is not None:
            body["targets"] = (dict(targets) if isinstance(targets, Mapping)
                               else read_targets_file(targets))
        if weights is not None:
            body["weights"] = list(weights)
        if lang is not None:
            body["lang"] = lang
        return self._post("/loss", body)

    def generate_summary(self, text: str, **options: Any) -> dict[str, Any]:
        """`POST /generate`: `summary` of `text` (options: `max_new_tokens`, `temperature`...)."""
        return self._post("/generate", {"text": text, **options})


_CLIENTS: dict[tuple[str, str | None], EvalserveClient] = {}
_LOCK = threading.Lock()


def _client(base_url: str | None, token: str | None) -> EvalserveClient:
    key = ((base_url or default_url()).rstrip("/"), token if token is not None
           else default_token())
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = EvalserveClient(key[0], key[1])
            _CLIENTS[key] = client
        return client


def get_relevance(originals: Sequence[str], generated: Sequence[str], *,
                  base_url: str | None = None, token: str | None = None) -> dict[str, Any]:
    """BERTScore of each generated text against its original (`EvalserveClient.get_relevance`)."""
    return _client(base_url, token).get_relevance(originals, generated)


def get_factuality(originals: Sequence[str], generated: Sequence[str], *,
                   base_url: str | None = None, token: str | None = None) -> dict[str, Any]:
    """Factuality in [0, 1] and the method used (`EvalserveClient.get_factuality`)."""
    return _client(base_url, token).get_factuality(originals, generated)


def get_readability(texts: Sequence[str], lang: str | None = None, *,
                    base_url: str | None = None, token: str | None = None) -> dict[str, Any]:
    """FKGL, SMOG and Dale-Chall of each text (`EvalserveClient.get_readability`)."""
    return _client(base_url, token).get_readability(texts, lang)


def get_rouge(predictions: Sequence[str], references: Sequence[str], lang: str = "en",
              recipe: str = "standard", *, base_url: str | None = None,
              token: str | None = None) -> dict[str, Any]:
    """ROUGE-L of each prediction against its reference (`EvalserveClient.get_rouge`)."""
    return _client(base_url, token).get_rouge(predictions, references, lang, recipe)


def get_loss(
    originals: Sequence[str],
    humans_or_generated: Sequence[str],
    generated: Sequence[str] | None = None,
    *,
    weights: Sequence[float] | None = None,
    targets: Mapping[str, Any] | str | Path | None = None,
    lang: str | None = None,
    base_url: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """The seed's weighted loss: ``get_loss(O, H, G, weights=)`` or ``get_loss(O, G, weights=)``."""
    return _client(base_url, token).get_loss(
        originals, humans_or_generated, generated, weights=weights, targets=targets, lang=lang
    )


def generate_summary(text: str, *, base_url: str | None = None, token: str | None = None,
                     **options: Any) -> dict[str, Any]:
    """A plain-language summary of `text` from the server's model (`POST /generate`)."""
    return _client(base_url, token).generate_summary(text, **options)


def calibrate_targets(
    path: str | Path,
    save_to: str | Path | None = "targets.json",
    subset: float = 0.5,
    chunk_size: int = 16,
    progress: Callable[[int, int], Any] | None = None,
    seed: int = 0,
    lang: str = "en",
) -> dict[str, Any]:
    """Seed 002's `calibrateTargets`, computed in this process (not over HTTP): human targets
    for the loss, written to `save_to` (what `getLoss(O, G)` then reads). Factuality is
    AlignScore with `ALIGNSCORE_CKPT`, else the LLM judge on the configured model. Returns the
    targets as the JSON dict written. Same as `evalserve calibrate`."""
    import asyncio

    from evalserve.judge.factuality import local_service
    from evalserve.settings import load_settings

    async def run() -> Any:
        async with local_service(load_settings()) as service:
            return await service.calibrate(path, save_to=save_to, subset=subset,
                                           chunk_size=chunk_size, progress=progress, seed=seed,
                                           lang=lang)

    return asyncio.run(run()).to_dict()


# seed 002's names, so its training code runs unchanged
getLoss = get_loss
getRelevance = get_relevance
getFactuality = get_factuality
getReadability = get_readability
calibrateTargets = calibrate_targets
