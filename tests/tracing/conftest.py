"""Every traced app uninstruments httpx when it stops (the instrumentation is process-wide)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor


@pytest.fixture(autouse=True)
def _httpx_left_uninstrumented() -> Iterator[None]:
    yield
    assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
