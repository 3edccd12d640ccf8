"""OpenAI wire models: what a request may carry, what it may not, and the errors it gets."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from evalserve.engines.base import GenerationRequest
from evalserve.server.protocol.openai import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    JsonSchemaFormat,
    ModelDetail,
    ModelList,
    StructuredOutputs,
)


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}


def errors_of(model: type, data: dict[str, Any]) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [(tuple(e["loc"]), e["type"]) for e in info.value.errors()]


@pytest.mark.parametrize(("fields", "loc", "kind"), [
    ({"model": ""}, ("model",), "string_too_short"),
    ({"temperature": 2.5}, ("temperature",), "less_than_equal"),
    ({"temperature": -0.1}, ("temperature",), "greater_than_equal"),
    ({"top_p": 0}, ("top_p",), "greater_than"),
    ({"top_p": 1.5}, ("top_p",), "less_than_equal"),
    ({"n": 0}, ("n",), "greater_than_equal"),
    ({"n": 17}, ("n",), "less_than_equal"),
    ({"max_tokens": 0}, ("max_tokens",), "greater_than_equal"),
    ({"max_completion_tokens": 0}, ("max_completion_tokens",), "greater_than_equal"),
    ({"presence_penalty": 2.5}, ("presence_penalty",), "less_than_equal"),
    ({"frequency_penalty": -3}, ("frequency_penalty",), "greater_than_equal"),
    ({"repetition_penalty": 0}, ("repetition_penalty",), "greater_than"),
    # the seam's ranges, so the OpenAPI schema (and schemathesis) promise what is accepted
    ({"repetition_penalty": 2.5}, ("repetition_penalty",), "less_than_equal"),
    ({"seed": 2**64}, ("seed",), "less_than_equal"),
    ({"seed": -(2**63) - 1}, ("seed",), "greater_than_equal"),
    ({"top_logprobs": 21}, ("top_logprobs",), "less_than_equal"),
    ({"messages": []}, ("messages",), "too_short"),
    ({"messages": [{"content": "x"}]}, ("messages", 0, "role"), "missing"),
    ({"response_format": {"type": "xml"}}, ("response_format", "type"), "literal_error"),
    ({"stream_options": {"include_usage": "maybe"}},
     ("stream_options", "include_usage"), "bool_parsing"),
])
def test_chat_field_out_of_range_is_a_validation_error_at_that_field(
    fields: dict[str, Any], loc: tuple, kind: str
) -> None:
    assert errors_of(ChatCompletionRequest, chat(**fields)) == [(loc, kind)]


def test_model_is_required() -> None:
    data = chat()
    del data["model"]
    assert errors_of(ChatCompletionRequest, data) == [(("model",), "missing")]


@pytest.mark.parametrize(("fields", "loc", "kind"), [
    ({"logprobs": 21}, ("logprobs",), "less_than_equal"),
    ({"logprobs": -1}, ("logprobs",), "greater_than_equal"),
    ({"prompt": 3}, ("prompt", "str"), "string_type"),
    ({"prompt": ["a", 3]}, ("prompt", "list[str]", 1), "string_type"),
])
def test_completion_field_errors(fields: dict[str, Any], loc: tuple, kind: str) -> None:
    assert (loc, kind) in errors_of(CompletionRequest, {"model": "m", "prompt": "p", **fields})


def test_completion_needs_a_prompt() -> None:
    assert errors_of(CompletionRequest, {"model": "m"}) == [(("prompt",), "missing")]


def test_defaults_are_openai_s() -> None:
    body = ChatCompletionRequest.model_validate(chat())
    assert (body.temperature, body.top_p, body.n, body.stream) == (1.0, 1.0, 1, False)
    assert (body.max_tokens, body.max_completion_tokens, body.logprobs) == (None, None, False)
    assert body.repetition_penalty == 1.0 and body.stop_list() == []
    completion = CompletionRequest.model_validate({"model": "m", "prompt": "p"})
    assert completion.echo is False and completion.logprobs is None


def test_max_tokens_and_max_completion_tokens_are_kept_apart() -> None:
    # the handler prefers max_completion_tokens; the model must keep both as sent
    body = ChatCompletionRequest.model_validate(chat(max_tokens=3, max_completion_tokens=9))
    assert (body.max_tokens, body.max_completion_tokens) == (3, 9)
    only_new = ChatCompletionRequest.model_validate(chat(max_completion_tokens=5))
    assert (only_new.max_tokens, only_new.max_completion_tokens) == (None, 5)
    # completions know only max_tokens: max_completion_tokens is an unknown extra there
    completion = CompletionRequest.model_validate(
        {"model": "m", "prompt": "p", "max_completion_tokens": 5})
    assert completion.max_tokens is None and "max_completion_tokens" not in completion.model_dump()


def test_unknown_fields_are_ignored_at_every_level() -> None:
    body = ChatCompletionRequest.model_validate(chat(
        tools=[{"type": "function"}], logit_bias={"1": 2}, parallel_tool_calls=True,
        messages=[{"role": "assistant", "content": "x", "tool_calls": [], "refusal": None}],
        stream_options={"include_usage": True, "continuous_usage_stats": True},
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": {},
                                                                "extra": 1}},
        structured_outputs={"regex": "a+", "disable_fallback": True}))
    dumped = body.model_dump()
    assert not {"tools", "logit_bias", "parallel_tool_calls"} & set(dumped)
    assert dumped["messages"] == [{"role": "assistant", "content": "x", "name": None}]
    assert dumped["stream_options"] == {"include_usage": True}
    assert "extra" not in dumped["response_format"]["json_schema"]
    assert "disable_fallback" not in dumped["structured_outputs"]


@pytest.mark.parametrize(("fmt", "kind", "schema"), [
    ({"type": "text"}, "text", None),
    ({"type": "json_object"}, "json_object", None),
    ({"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"},
                                             "strict": True}}, "json_schema", {"type": "object"}),
    ({"type": "json_schema"}, "json_schema", None),  # refused later, by the handler
])
def test_response_format_variants(fmt: dict[str, Any], kind: str,
                                  schema: dict[str, Any] | None) -> None:
    body = ChatCompletionRequest.model_validate(chat(response_format=fmt))
    assert body.response_format is not None and body.response_format.type == kind
    got = body.response_format.json_schema
    assert (got.schema_ if got is not None else None) == schema


def test_json_schema_accepts_schema_by_alias_or_name_and_defaults_its_name() -> None:
    by_alias = JsonSchemaFormat.model_validate({"schema": {"a": 1}})
    by_name = JsonSchemaFormat.model_validate({"schema_": {"a": 1}})
    assert by_alias.schema_ == by_name.schema_ == {"a": 1}
    assert by_alias.name == "output" and by_alias.strict is None
    assert JsonSchemaFormat.model_validate({}).schema_ == {}
    with pytest.raises(ValidationError):
        JsonSchemaFormat.model_validate({"schema": ["not", "an", "object"]})


def test_structured_outputs_json_alias_and_kinds() -> None:
    so = StructuredOutputs.model_validate({"json": {"type": "object"}})
    assert so.json_ == {"type": "object"} and so.regex is None and so.choice is None
    assert StructuredOutputs.model_validate({"json": '{"type": "string"}'}).json_ == (
        '{"type": "string"}')
    assert StructuredOutputs.model_validate({"choice": ["a", "b"]}).choice == ["a", "b"]
    with pytest.raises(ValidationError):
        StructuredOutputs.model_validate({"choice": "a"})


def test_legacy_guided_fields_are_understood() -> None:
    body = CompletionRequest.model_validate({
        "model": "m", "prompt": "p", "guided_json": {"type": "object"}, "guided_regex": "x+",
        "guided_choice": ["y", "n"]})
    assert body.guided_json == {"type": "object"} and body.guided_regex == "x+"
    assert body.guided_choice == ["y", "n"]


@pytest.mark.parametrize(("stop", "expected"), [
    (None, []),
    ("\n", ["\n"]),
    (["a", "", "b"], ["a", "b"]),
    ([], []),
])
def test_stop_list(stop: str | list[str] | None, expected: list[str]) -> None:
    body = CompletionRequest.model_validate({"model": "m", "prompt": "p", "stop": stop})
    assert body.stop_list() == expected


def test_a_lone_empty_stop_string_is_no_stop() -> None:
    """Defect: a lone `"stop": ""` reached the in-process engine as `[""]`, which shifted its
    safe-emit end by +1 (max(len(stop)) - 1 == -1) and Sequence._emit_safe raised IndexError
    on the decode thread. The engine seam (`GenerationRequest`) drops empty stop strings."""
    for stop in ("", [""], ["", ""]):
        body = CompletionRequest.model_validate({"model": "m", "prompt": "p", "stop": stop})
        assert GenerationRequest(prompt=body.prompt, stop=body.stop_list()).stop == []


@pytest.mark.parametrize(("content", "text"), [
    (None, ""),
    ("plain", "plain"),
    ([{"type": "text", "text": "a "}, {"type": "image_url", "image_url": {"url": "x"}},
      {"type": "text", "text": "b"}], "a b"),
    ([{"type": "text"}], ""),
    ([], ""),
])
def test_chat_message_text_joins_text_parts_only(content: Any, text: str) -> None:
    assert ChatMessage.model_validate({"role": "user", "content": content}).text() == text


def test_chat_message_content_parts_must_be_objects() -> None:
    errors = errors_of(ChatMessage, {"role": "user", "content": ["a"]})
    assert (("content", "list[dict[str,any]]", 0), "dict_type") in errors


def test_response_models_dump_the_openai_shapes() -> None:
    listing = ModelList(data=[{"id": "a", "created": 1, "owned_by": "me"}]).model_dump()
    assert listing == {"object": "list", "data": [
        {"id": "a", "object": "model", "created": 1, "owned_by": "me", "max_model_len": None}]}
    detail = ModelDetail(id="a", created=1, owned_by="me", model="a", status="loaded",
                         gpu_memory_usage=None, loaded_at=2.5).model_dump()
    assert detail["object"] == "model" and detail["loaded_at"] == 2.5
    with pytest.raises(ValidationError):
        ModelDetail(id="a", created=1, owned_by="me", model="a", status="loaded")
