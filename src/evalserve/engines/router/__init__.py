"""The router engine (`UPSTREAMS_FILE`): many models, each over one or more OpenAI-compatible
endpoints, least-loaded balancing, failover, fallbacks and health checks (docs/router.md)."""

from __future__ import annotations

from evalserve.engines.router.config import (
    EndpointConfig,
    ModelConfig,
    UpstreamsConfig,
    load_upstreams,
)
from evalserve.engines.router.engine import RouterEngine, RouterHealth

__all__ = ["EndpointConfig", "ModelConfig", "UpstreamsConfig", "load_upstreams",
           "RouterEngine", "RouterHealth"]
