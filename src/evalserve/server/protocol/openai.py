"""OpenAI wire models: `/v1/models`, `/v1/completions`, `/v1/chat/completions`.

Requests ignore unknown fields (OpenAI clients send many); vLLM's `structured_outputs`
extension and `repetition_penalty` are understood. Responses follow the OpenAI shapes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "StreamOptions",
    "JsonSchemaFormat",
    "ResponseFormat",
    "StructuredOutputs",
    "SamplingFields",
    "CompletionRequest",
    "ChatMessage",
    "ChatCompletionRequest",
    "Usage",
    "ModelCard",
    "ModelList",
    "ModelDetail",
]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class StreamOptions(_Lenient):
    include_usage: bool = False


class JsonSchemaFormat(_Lenient):
    name: str = "output"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None
    description: str | None = None

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ResponseFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JsonSchemaFormat | None = None


class StructuredOutputs(_Lenient):
    """vLLM's `structured_outputs` extra body field; exactly one kind may be set."""

    json_: dict[str, Any] | str | None = Field(None, alias="json")
    regex: str | None = None
    choice: list[str] | None = None
    json_object: bool | None = None
    grammar: str | None = None

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class SamplingFields(_Lenient):
    """Fields shared by completions and chat completions."""

    model: str = Field(..., min_length=1, description="A model id listed by GET /v1/models.")
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=16)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    repetition_penalty: float = Field(1.0, gt=0.0, le=2.0)
    """vLLM extension."""
    response_format: ResponseFormat | None = None
    structured_outputs: StructuredOutputs | None = None
    """vLLM extension: `{"json": schema}`, `{"regex": ...}` or `{"choice": [...]}`."""
    guided_json: dict[str, Any] | str | None = None
    """Accepted from older vLLM clients; same as `structured_outputs.json`."""
    guided_regex: str | None = None
    guided_choice: list[str] | None = None
    user: str | None = None

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else [s for s in self.stop if s]


class CompletionRequest(SamplingFields):
    prompt: str | list[str] = Field(..., description="A string or a list of strings.")
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False


class ChatMessage(_Lenient):
    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None

    def text(self) -> str:
        """The content as plain text (text parts of a multi-part content joined)."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    max_model_len: int | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ModelDetail(ModelCard):
    """OpenAI's model object plus seed 001's `model/status/gpu_memory_usage/loaded_at`."""

    model: str
    status: str
    gpu_memory_usage: float | None
    loaded_at: float | None
