"""Kubernetes manifests checked against the `kubernetes` client's API models, offline.

`from_dict` of the client's models (pydantic, strict) checks types and required fields, but
it reads only the fields it knows and drops the rest, so a misspelt field (`readinesProbe`)
would pass unnoticed and be ignored by the cluster too. `unknown_fields` walks the document
along the models' `attribute_map`/`openapi_types` and names every key the API does not have.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import models

__all__ = ["load_documents", "model_for", "unknown_fields", "validate"]

_WRAPPED = re.compile(r"^(Optional|List|Dict)\[(.*)\]$")


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of `path`."""
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def model_for(doc: dict[str, Any]) -> type:
    """The client's model of a document: `apps/v1` `Deployment` is `V1Deployment`."""
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise ValueError("a manifest needs string `apiVersion` and `kind`")
    version = api_version.rsplit("/", 1)[-1]
    name = version[:1].upper() + version[1:] + kind
    model = getattr(models, name, None)
    if model is None:
        raise ValueError(f"no Kubernetes API model {name} for {api_version} {kind}")
    return model


def _inner(type_name: str) -> tuple[str, str]:
    """`List[V1Container]` -> (`List`, `V1Container`); `Dict[str, str]` -> (`Dict`, `str`)."""
    match = _WRAPPED.match(type_name)
    if not match:
        return "", type_name
    outer, inner = match.groups()
    if outer == "Dict":
        inner = inner.split(",", 1)[1].strip()
    return outer, inner


def unknown_fields(data: Any, type_name: str, path: str = "") -> list[str]:
    """Paths of the keys in `data` that the model `type_name` (recursively) does not define."""
    outer, inner = _inner(type_name)
    if outer == "Optional":
        return unknown_fields(data, inner, path)
    if outer == "List":
        if not isinstance(data, list):
            return []  # the wrong type is from_dict's to report
        return [p for i, item in enumerate(data)
                for p in unknown_fields(item, inner, f"{path}[{i}]")]
    if outer == "Dict":
        if not isinstance(data, dict):
            return []
        return [p for k, v in data.items() for p in unknown_fields(v, inner, f"{path}.{k}")]
    model = getattr(models, type_name, None)
    if model is None or not isinstance(data, dict):
        return []  # a primitive, `object` (int-or-string), or a type error
    by_key = {key: attr for attr, key in model.attribute_map.items()}
    found = []
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key not in by_key:
            found.append(f"{where} (not a field of {type_name})")
        else:
            found += unknown_fields(value, model.openapi_types[by_key[key]], where)
    return found


def validate(doc: dict[str, Any]) -> Any:
    """The document as its API model; ValueError naming what is wrong (unknown fields, missing
    required fields, wrong types)."""
    model = model_for(doc)
    unknown = unknown_fields(doc, model.__name__)
    if unknown:
        raise ValueError("unknown fields: " + ", ".join(unknown))
    return model.from_dict(doc)  # pydantic: raises on missing required fields and wrong types
