"""evalserve: a self-hosted text evaluation service (LLM-as-a-judge, metrics, OpenAI API)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
