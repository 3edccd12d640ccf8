"""Wire models of seed 003's grader contract: `GET /` and `POST /predict`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

__all__ = ["PredictRequest", "PredictResponse", "ServiceStatus"]


class PredictRequest(BaseModel):
    """`{"prompt": "..."}`, or with `BATCH_MODE=1` `{"prompt": ["...", ...]}`."""

    model_config = ConfigDict(extra="ignore")

    prompt: str | list[str] = Field(
        description="One question, or (BATCH_MODE=1) a list of questions answered in order."
    )

    @field_validator("prompt", mode="before")
    @classmethod
    def _flat_strings(cls, value: object) -> object:
        # Replaces pydantic's union errors ("str: ..., list[str]: ...") with one that says
        # what to send; the batch-mode and length checks happen in `check_prompts`.
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    kind = "a list" if isinstance(item, list) else type(item).__name__
                    raise PydanticCustomError(
                        "prompt_item",
                        "item {index} must be a string, got {kind}: send a flat list of strings",
                        {"index": i, "kind": kind},
                    )
            return value
        raise PydanticCustomError(
            "prompt_type",
            "must be a string (or, with BATCH_MODE=1, a list of strings), got {kind}",
            {"kind": "null" if value is None else type(value).__name__},
        )


class PredictResponse(BaseModel):
    """`{"response": "..."}`, or a list of the same length and order as the prompts."""

    response: str | list[str]


class ServiceStatus(BaseModel):
    """`GET /`: `ok` (ready), `batch` (ready, BATCH_MODE=1), `loading` or `error` (503)."""

    status: Literal["ok", "batch", "loading", "error"]
    message: str | None = Field(None, description="Why the service is not ready (error only).")
