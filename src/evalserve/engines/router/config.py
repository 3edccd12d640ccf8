"""The `UPSTREAMS_FILE` schema: routed models, their OpenAI-compatible endpoints, fallbacks.

`load_upstreams(path)` parses the YAML, expands `${VAR}` and `${VAR:-default}` in every string
value from the environment (keys stay out of the file), then validates it; every problem is a
`ConfigurationError` naming the file, the line and the field, e.g.
`upstreams.yaml, line 7: models[0].endpoints[1].weight: Input should be greater than 0`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalserve.errors import ConfigurationError

if TYPE_CHECKING:
    import yaml

__all__ = ["EndpointConfig", "ModelConfig", "UpstreamsConfig", "load_upstreams", "safe_url"]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
Loc = tuple[str | int, ...]


def safe_url(url: str) -> str:
    """`url` without credentials or query, for logs and `/health`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EndpointConfig(_Strict):
    """One OpenAI-compatible server answering for a routed model."""

    url: str
    """The API root, as an OpenAI client's `base_url`: `http://vllm-a:8000/v1`."""
    api_key: str | None = None
    """Bearer key sent to this endpoint (write `${VAR}` to read it from the environment)."""
    upstream_model: str | None = None
    """The model name this endpoint knows; default: the routed model's `name`."""
    weight: float = Field(1.0, gt=0)
    """Share of the model's requests, relative to its other endpoints."""
    max_concurrency: int = Field(64, ge=1)
    """Most requests in flight at this endpoint; more wait for a slot."""
    timeout: float | None = Field(None, gt=0)
    """Seconds a request may take here; default `UPSTREAM_TIMEOUT`."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{safe_url(value)!r} is not an http(s) URL such as "
                             "http://vllm:8000/v1")
        url = value.strip().rstrip("/")
        for suffix in ("/chat/completions", "/completions"):
            url = url.removesuffix(suffix)
        return url


class ModelConfig(_Strict):
    """A model clients name in `"model"`, served by one or more endpoints."""

    name: str = Field(min_length=1)
    """What clients send as `"model"` (and what `/v1/models` lists)."""
    endpoints: list[EndpointConfig] = Field(min_length=1)
    fallbacks: list[str] = Field(default_factory=list)
    """Routed models tried, in order, when none of this model's endpoints can answer."""
    rate_limit: str | None = None
    """Prompts per caller and window (`30/minute`); default: `RATE_LIMITS`, else seed 001's
    tier by the model size read from `name`, else from the endpoints' `upstream_model`."""

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate such as 30/minute or 5/second") from None
        return value

    def upstream_models(self) -> list[str]:
        """The names the endpoints know this model by."""
        return [e.upstream_model or self.name for e in self.endpoints]


class UpstreamsConfig(_Strict):
    """The whole file: the routed models and how their endpoints are health-checked."""

    models: list[ModelConfig] = Field(min_length=1)
    default_model: str | None = None
    """The model of requests that name none; default: the first."""
    health_check_interval: float = Field(10.0, gt=0)
    """Seconds between checks (`GET /models`) of an endpoint in rotation."""
    probe_backoff: float = Field(0.5, gt=0)
    """Seconds before the first probe of an endpoint taken out; doubled after each failure."""
    probe_backoff_max: float = Field(30.0, gt=0)
    """Longest wait between two probes of an endpoint out of rotation."""
    probe_timeout: float = Field(3.0, gt=0)
    """Seconds a health check may take before it counts as failed."""

    @model_validator(mode="after")
    def _references(self) -> UpstreamsConfig:
        names: dict[str, int] = {}
        for i, model in enumerate(self.models):
            if model.name in names:
                raise _Problem(("models", i, "name"), f"model {model.name!r} is listed twice "
                               f"(also models[{names[model.name]}])")
            names[model.name] = i
        for i, model in enumerate(self.models):
            for j, fallback in enumerate(model.fallbacks):
                if fallback == model.name:
                    raise _Problem(("models", i, "fallbacks", j),
                                   f"model {model.name!r} cannot be its own fallback")
                if fallback not in names:
                    raise _Problem(("models", i, "fallbacks", j),
                                   f"{fallback!r} is not a routed model; routed: "
                                   f"{', '.join(names)}")
        if self.default_model is not None and self.default_model not in names:
            raise _Problem(("default_model",), f"{self.default_model!r} is not a routed "
                           f"model; routed: {', '.join(names)}")
        return self

    @property
    def default(self) -> str:
        """The default model's name."""
        return self.default_model or self.models[0].name


class _Problem(ConfigurationError):
    """A cross-field problem at `loc` (not a ValueError, so pydantic lets it through)."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(f"{_dotted(loc)}: {message}")
        self.loc = loc
        self.detail = message


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the file"


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], where: str) -> None:
    """Record the line of every key and item under `node`; expand `${VAR}` in its strings."""
    import yaml

    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*loc, str(key.value))
            lines[child] = key.start_mark.line + 1
            _walk(value, child, lines, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*loc, i), lines, where)
    elif isinstance(node, yaml.ScalarNode) and "${" in node.value:
        node.value = _expand(node.value, f"{where}, line {node.start_mark.line + 1}: "
                                         f"{_dotted(loc)}")


def _expand(text: str, where: str) -> str:
    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is None and default is None:
            raise ConfigurationError(f"{where}: environment variable {name} is not set "
                                     f"(set it, or write ${{{name}:-default}})")
        return found if found is not None else default

    return _ENV.sub(value, text)


def _line(loc: Loc, lines: dict[Loc, int]) -> int | None:
    while loc not in lines and loc:
        loc = loc[:-1]
    return lines.get(loc)


def load_upstreams(path: Path | str) -> UpstreamsConfig:
    """Read and validate `UPSTREAMS_FILE`; errors name the line and field to fix."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"UPSTREAMS_FILE {path} cannot be read: {exc.strerror}"
                                 ) from None
    where = f"UPSTREAMS_FILE {path}"
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Loc, int] = {}
        if node is not None:
            _walk(node, (), lines, where)
        data: Any = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigurationError(f"{where}{at}: not valid YAML: "
                                 f"{getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where}: expected a mapping with `models:` at the top")
    try:
        return UpstreamsConfig.model_validate(data)
    except _Problem as exc:
        raise ConfigurationError(
            f"{where}, line {_line(exc.loc, lines)}: {_dotted(exc.loc)}: {exc.detail}") from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            problems.append(f"{where}, line {_line(loc, lines)}: {_dotted(loc)}: "
                            f"{error['msg']}")
        raise ConfigurationError("\n".join(problems)) from None
