"""Point MLflow's own judges at an evalserve server (its OpenAI-compatible `/v1`).

MLflow 3.x sends judge calls for `model="openai:/<id>"` through its built-in gateway
providers (no litellm needed): the request goes to `base_url` *verbatim* (the full
`.../v1/chat/completions` URL), and the OpenAI provider insists on `OPENAI_API_KEY` being set
even when a header carries the key. Two APIs are covered:

- `make_evalserve_judge`: `mlflow.genai.judges.make_judge` for `mlflow.genai.evaluate`.
  MLflow asks for `{"result", "rationale"}` with a `response_format` json_schema, which
  evalserve enforces with xgrammar; we pass our own equivalent schema through
  `inference_params` (MLflow merges them last) to bound the rationale's length, so a small
  model can never be cut off mid-string and every row parses.
- `make_evalserve_genai_metric`: the older `mlflow.metrics.genai.make_genai_metric` for
  `mlflow.evaluate` (seed 004), constrained to `{"score", "justification"}` JSON, which
  MLflow's parser reads first.

mlflow is imported inside the functions (it takes seconds to import).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from evalserve.client.http import auth_headers

__all__ = [
    "chat_completions_url",
    "judge_response_format",
    "metric_response_format",
    "make_evalserve_judge",
    "make_evalserve_genai_metric",
]

#: `OPENAI_API_KEY` placeholder when evalserve runs without `API_TOKEN`.
PLACEHOLDER_KEY = "evalserve"


def chat_completions_url(base_url: str) -> str:
    """`http://host:8000`, `.../v1` or `.../v1/chat/completions` -> the chat completions URL."""
    url = base_url.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if not url.endswith("/v1"):
        url += "/v1"
    return url + "/chat/completions"


def _scale_schema(scale: tuple[int, int] | None, value_type: type) -> dict[str, Any]:
    if value_type is bool:
        return {"type": "boolean"}
    if value_type is float:
        schema: dict[str, Any] = {"type": "number"}
        if scale:
            schema |= {"minimum": scale[0], "maximum": scale[1]}
        return schema
    if value_type is int:
        if not scale:
            return {"type": "integer"}
        if scale[1] - scale[0] > 100:  # an enum of a wide range would be a huge schema
            return {"type": "integer", "minimum": scale[0], "maximum": scale[1]}
        return {"type": "integer", "enum": list(range(scale[0], scale[1] + 1))}
    return {"type": "string", "maxLength": 40}


def _json_schema_format(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {
            "name": name,
            "strict": True,
            "schema": {"type": "object", "properties": properties,
                       "required": list(properties), "additionalProperties": False},
        },
    }


def judge_response_format(*, value_type: type = int, scale: tuple[int, int] | None = (1, 5),
                          max_rationale_chars: int = 300) -> dict[str, Any]:
    """The `{"result", "rationale"}` schema MLflow's judges parse, with the result restricted
    to the scale and the rationale bounded (result first, so a verdict always exists)."""
    return _json_schema_format("JudgeEvaluation", {
        "result": _scale_schema(scale, value_type),
        "rationale": {"type": "string", "minLength": 1, "maxLength": max_rationale_chars},
    })


def metric_response_format(*, scale: tuple[int, int] = (1, 5),
                           max_justification_chars: int = 300) -> dict[str, Any]:
    """The `{"score", "justification"}` JSON that `make_genai_metric`'s parser reads."""
    return _json_schema_format("ScoreAndJustification", {
        "score": _scale_schema(scale, int),
        "justification": {"type": "string", "minLength": 1,
                          "maxLength": max_justification_chars},
    })


def _auth(api_key: str | None) -> dict[str, str] | None:
    # MLflow's OpenAI provider refuses to start without OPENAI_API_KEY; the header below is
    # what evalserve checks, so the environment only needs *a* value.
    os.environ.setdefault("OPENAI_API_KEY", api_key or PLACEHOLDER_KEY)
    return auth_headers(api_key) or None


def make_evalserve_judge(
    name: str,
    instructions: str,
    *,
    base_url: str,
    model: str,
    api_key: str | None = None,
    feedback_value_type: type = int,
    scale: tuple[int, int] | None = (1, 5),
    temperature: float = 0.0,
    max_tokens: int = 160,
    max_rationale_chars: int = 300,
    description: str | None = None,
) -> Any:
    """An MLflow judge (`make_judge`) whose model is evalserve at `base_url`.

    `instructions` use MLflow's template variables (`{{ inputs }}`, `{{ outputs }}`,
    `{{ expectations }}`). Use it as a scorer: `mlflow.genai.evaluate(data=df,
    scorers=[judge])`, or call it: `judge(inputs=..., outputs=...)` -> `Feedback`.
    """
    from mlflow.genai.judges import make_judge

    return make_judge(
        name=name,
        instructions=instructions,
        model=f"openai:/{model}",
        description=description,
        feedback_value_type=feedback_value_type,
        base_url=chat_completions_url(base_url),
        extra_headers=_auth(api_key),
        inference_params={
            "temperature": temperature,
            "max_tokens": max_tokens,
            "response_format": judge_response_format(
                value_type=feedback_value_type, scale=scale,
                max_rationale_chars=max_rationale_chars),
        },
    )


def make_evalserve_genai_metric(
    name: str,
    definition: str,
    grading_prompt: str,
    *,
    base_url: str,
    model: str,
    api_key: str | None = None,
    examples: Sequence[Any] | None = None,
    scale: tuple[int, int] = (1, 5),
    temperature: float = 0.0,
    max_tokens: int = 160,
    max_justification_chars: int = 300,
    aggregations: Sequence[str] = ("mean", "variance", "p90"),
    greater_is_better: bool = True,
    max_workers: int = 8,
) -> Any:
    """A seed-004 style `make_genai_metric` graded by evalserve at `base_url`, for
    `mlflow.evaluate(data=df, predictions="predictions", extra_metrics=[metric])`."""
    from mlflow.metrics.genai import make_genai_metric

    return make_genai_metric(
        name=name,
        definition=definition,
        grading_prompt=grading_prompt,
        examples=list(examples) if examples else None,
        model=f"openai:/{model}",
        parameters={
            "temperature": temperature,
            "max_tokens": max_tokens,
            "response_format": metric_response_format(
                scale=scale, max_justification_chars=max_justification_chars),
        },
        aggregations=list(aggregations),
        greater_is_better=greater_is_better,
        proxy_url=chat_completions_url(base_url),
        extra_headers=_auth(api_key),
        max_workers=max_workers,
    )
