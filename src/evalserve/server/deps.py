"""Typed FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from evalserve.engines.base import Engine
from evalserve.server.state import AppState
from evalserve.settings import Settings

__all__ = ["StateDep", "SettingsDep", "EngineDep", "get_state"]


def get_state(request: Request) -> AppState:
    return request.app.state.evalserve


def _settings(request: Request) -> Settings:
    return get_state(request).settings


def _engine(request: Request) -> Engine:
    return get_state(request).ready_engine()


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[Engine, Depends(_engine)]
