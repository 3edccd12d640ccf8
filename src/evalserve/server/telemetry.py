"""Prometheus telemetry: one `Telemetry` per app (its own `CollectorRegistry`), a request-count
middleware labelled by route template, and the separate `METRICS_PORT` server (`GET /metrics`
is `routes/prometheus.py`).

Other components record through the app's `Services.telemetry`; the job runner counts graded
items through its `count_graded` item hook.

Replicas: `evalserve_replica_info{replica, version} 1` names the replica behind each scrape
target (`REPLICA_ID`, else `<hostname>-<pid>`: the traces' `service.instance.id`). It is an
info metric, not a `replica` label on every series, as Prometheus' exporter guidelines ask:
the scrape already labels every series with its target (`instance`, or the pod from service
discovery), and a query that wants the replica's name joins it on the target
(`... * on (instance) group_left (replica) evalserve_replica_info`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from evalserve.engines.base import Engine
    from evalserve.settings import Settings

from evalserve import __version__
from evalserve.tracing import replica_name

__all__ = ["Telemetry", "install_telemetry", "metrics_server"]

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Telemetry:
    """Every metric evalserve exports, registered in a registry of its own.

    Args:
        engine: the app's engine (its queue is read at scrape time).
        loaded: whether the engine is ready now.
        active_jobs: queued + running jobs now.
        replica: this replica's name (`REPLICA_ID`); None: `<hostname>-<pid>`.
    """

    def __init__(self, engine: Engine, *, loaded: Callable[[], bool],
                 active_jobs: Callable[[], int], replica: str | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, Info

        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.generation_seconds = Histogram(
            "text_generation_seconds", "Time to generate one response (cache hits excluded).",
            ["model", "endpoint"], buckets=_LATENCY_BUCKETS, registry=r)
        self.generation_errors = Counter(
            "text_generation_errors", "Generations that failed, by error type.",
            ["model", "endpoint", "type"], registry=r)
        self.cache_hits = Counter("text_cache_hits", "Responses answered from the cache.",
                                  ["endpoint"], registry=r)
        self.cache_misses = Counter("text_cache_misses",
                                    "Cacheable responses that had to be generated.",
                                    ["endpoint"], registry=r)
        self.prompt_tokens = Counter("text_prompt_tokens", "Prompt tokens processed.",
                                     ["model"], registry=r)
        self.generated_tokens = Counter("text_generated_tokens", "Tokens generated.",
                                        ["model"], registry=r)
        self.rate_limited = Counter("text_rate_limited_requests",
                                    "Requests refused by the rate limiter.", ["model"], registry=r)
        self.limited = Counter("evalserve_rate_limited_requests",
                               "Requests refused by the item or text rate limit, by kind.",
                               ["kind"], registry=r)
        self.requests = Counter("evalserve_http_requests", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=r)
        self.request_seconds = Histogram(
            "evalserve_http_request_seconds", "HTTP request latency (until the headers).",
            ["method", "route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.items_graded = Counter("evalserve_items_graded", "Job items graded.", registry=r)
        self.replica = replica_name(replica)
        Info("evalserve_replica", "The replica behind this target (REPLICA_ID, else "
             "<hostname>-<pid>); join on instance to name any series' replica.",
             registry=r).info({"replica": self.replica, "version": __version__})
        r.register(_LiveCollector(engine, loaded, active_jobs))

    def observe_generation(self, model: str, endpoint: str, seconds: float,
                           prompt_tokens: int, completion_tokens: int) -> None:
        """Record one finished generation."""
        self.generation_seconds.labels(model, endpoint).observe(seconds)
        self.prompt_tokens.labels(model).inc(prompt_tokens)
        self.generated_tokens.labels(model).inc(completion_tokens)

    def count_graded(self, job: Any, item: dict[str, Any],
                     record: dict[str, Any]) -> dict[str, Any]:
        """Job item hook: count each graded item in `evalserve_items_graded_total`."""
        self.items_graded.inc()
        return {}

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _LiveCollector:
    """Gauges read at scrape time: engine queue, active jobs, process and GPU usage."""

    def __init__(self, engine: Engine, loaded: Callable[[], bool],
                 active_jobs: Callable[[], int]) -> None:
        import psutil

        self.engine = engine
        self.loaded = loaded
        self.active_jobs = active_jobs
        self.process = psutil.Process()
        self.process.cpu_percent(None)
        self._nvml: Any = _init_nvml()

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        loaded = self.loaded()
        depth = self.engine.queue_depth if loaded else 0
        running = self.engine.running if loaded else None  # None: the engine cannot tell
        yield GaugeMetricFamily("evalserve_engine_queue_depth",
                                "Sequences waiting to be decoded (requests in flight upstream "
                                "for the openai engine).", value=float(depth))
        if running is not None:
            yield GaugeMetricFamily("evalserve_engine_running", "Sequences being decoded.",
                                    value=float(running))
        yield GaugeMetricFamily("evalserve_active_jobs", "Jobs queued or running.",
                                value=float(self.active_jobs()))
        yield GaugeMetricFamily("evalserve_model_loaded", "1 when the engine is ready.",
                                value=1.0 if loaded else 0.0)
        with self.process.oneshot():
            cpu = self.process.cpu_percent(None)
            rss = self.process.memory_info().rss
        yield GaugeMetricFamily("evalserve_process_cpu_percent",
                                "Process CPU use since the last scrape (100 = one core).",
                                value=cpu)
        yield GaugeMetricFamily("evalserve_process_memory_bytes", "Process resident memory.",
                                value=float(rss))
        if self._nvml is not None:
            yield from _gpu_metrics(self._nvml)


def _init_nvml() -> Any:
    """pynvml (nvidia-ml-py) when installed and a GPU driver answers, else None."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # no package, no driver, no GPU: GPU gauges are simply absent
        return None


def _gpu_metrics(nvml: Any) -> Iterator[Metric]:
    from prometheus_client.core import GaugeMetricFamily

    used = GaugeMetricFamily("evalserve_gpu_memory_used_bytes", "GPU memory in use.",
                             labels=["gpu"])
    total = GaugeMetricFamily("evalserve_gpu_memory_total_bytes", "GPU memory.", labels=["gpu"])
    util = GaugeMetricFamily("evalserve_gpu_utilization_percent", "GPU utilisation.",
                             labels=["gpu"])
    try:
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            used.add_metric([str(i)], float(mem.used))
            total.add_metric([str(i)], float(mem.total))
            util.add_metric([str(i)], float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
    except Exception as exc:  # a driver hiccup must not break the scrape
        log.debug("GPU metrics unavailable: %s", exc)
    yield from (used, total, util)


class _RequestCounter:
    """Pure ASGI middleware counting requests by method, route template and status."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = _route_template(scope)
                self.telemetry.request_seconds.labels(scope["method"], route).observe(
                    time.perf_counter() - start)
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            self.telemetry.requests.labels(scope["method"], _route_template(scope),
                                           str(status)).inc()


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def install_telemetry(app: FastAPI, telemetry: Telemetry) -> None:
    """Count `app`'s requests in `telemetry` (add it as the outermost middleware)."""
    app.add_middleware(_RequestCounter, telemetry=telemetry)


@contextlib.asynccontextmanager
async def metrics_server(settings: Settings, telemetry: Telemetry) -> AsyncIterator[int | None]:
    """Serve `telemetry` on `METRICS_PORT` (0 disables) at `METRICS_HOST` (unset: `HOST`)
    until exit; yields the port listened on, or None when off (or the port is taken: logged,
    the app still starts)."""
    port = settings.metrics_port
    if not port:
        yield None
        return
    from prometheus_client import start_http_server

    try:
        server, thread = start_http_server(port, addr=settings.metrics_host or settings.host,
                                           registry=telemetry.registry)
    except OSError as exc:
        log.error("cannot serve metrics on METRICS_PORT=%s (%s); set METRICS_PORT to a free "
                  "port, or 0 to disable it (GET /metrics still works)", port, exc)
        yield None
        return
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
