"""Typed FastAPI dependencies.

They are `async` on purpose: FastAPI runs a plain `def` dependency in a thread pool, a
thread hop on every request that cost milliseconds on the `/v1` hot path.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from evalserve.engines.base import Engine
from evalserve.jobs.service import JobService
from evalserve.server.auth import Caller, caller_of
from evalserve.server.state import AppState, require
from evalserve.settings import Settings

__all__ = ["StateDep", "SettingsDep", "EngineDep", "JobsDep", "CallerDep", "get_state", "state_of"]


def state_of(request: Request) -> AppState:
    return request.app.state.evalserve


async def get_state(request: Request) -> AppState:
    return state_of(request)


async def _settings(request: Request) -> Settings:
    return state_of(request).settings


async def _engine(request: Request) -> Engine:
    return state_of(request).ready_engine()


async def _caller(request: Request) -> Caller:
    return caller_of(request)


async def _jobs(request: Request) -> JobService:
    return require(state_of(request).components.jobs, "job service")


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[Engine, Depends(_engine)]
#: The job service; 503 until the lifespan has started it.
JobsDep = Annotated[JobService, Depends(_jobs)]
#: Who is calling (`server/auth.py`): the key id owning their jobs, admin or not.
CallerDep = Annotated[Caller, Depends(_caller)]
