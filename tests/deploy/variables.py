"""What a deploy file may set in an evalserve container, and compose's `${VAR:-default}`."""

from __future__ import annotations

import re
from pathlib import Path

from evalserve.settings import Settings

__all__ = ["DEPLOY", "EXTERNAL_VARIABLES", "interpolate", "known_variables"]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

#: Variables read by the libraries evalserve runs on, not by its settings: each with its reader.
EXTERNAL_VARIABLES = {
    "HF_HUB_OFFLINE": "huggingface_hub: no network at run time",
    "TRANSFORMERS_OFFLINE": "transformers: no network at run time",
    "HF_DATASETS_OFFLINE": "datasets: no network at run time",
    "HF_TOKEN": "huggingface_hub: gated models in `evalserve download`",
    "FORWARDED_ALLOW_IPS": "uvicorn: proxies trusted for X-Forwarded-For",
    "PYTHONUNBUFFERED": "python: logs written at once",
    "PIP_NO_CACHE_DIR": "pip: no cache in the image",
}

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def known_variables() -> set[str]:
    """Every evalserve setting's variable, and the external ones above."""
    return {name.upper() for name in Settings.model_fields} | set(EXTERNAL_VARIABLES)


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """`value` as compose resolves it with `env` (default: nothing set, so defaults apply)."""
    env = env or {}
    return _INTERPOLATION.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)
