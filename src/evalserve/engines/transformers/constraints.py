"""Output constraints compiled to xgrammar grammars and enforced token by token.

The same grammar engine vLLM uses: a JSON schema (with `maxLength` honoured), a regex, a choice
list or any JSON object becomes a token bitmask applied to the logits before sampling, so a
constrained answer always parses.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from evalserve.engines.base import OutputConstraint
from evalserve.errors import InvalidInputError

__all__ = ["GrammarFactory"]


def _choice_grammar(options: tuple[str, ...]) -> str:
    alternatives = " | ".join(json.dumps(o, ensure_ascii=False) for o in options)
    return f"root ::= {alternatives}"


class GrammarFactory:
    """Compiles constraints for one tokenizer, caching compiled grammars by their source."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int]) -> None:
        import xgrammar as xgr

        self._xgr = xgr
        info = xgr.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids
        )
        self._compiler = xgr.GrammarCompiler(info, max_threads=1)
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.vocab_size = vocab_size

    def _compile(self, constraint: OutputConstraint) -> Any:
        compiler = self._compiler
        if constraint.json_schema is not None:
            return compiler.compile_json_schema(
                json.dumps(constraint.json_schema), any_whitespace=False
            )
        if constraint.json_object:
            return compiler.compile_builtin_json_grammar()
        if constraint.regex is not None:
            return compiler.compile_regex(constraint.regex)
        assert constraint.choice is not None
        return compiler.compile_grammar(_choice_grammar(constraint.choice))

    def matcher(self, constraint: OutputConstraint) -> Any:
        """A fresh matcher for one sequence; bad schemas and regexes are an InvalidInputError."""
        key = json.dumps(
            [constraint.json_schema, constraint.regex, constraint.choice, constraint.json_object],
            sort_keys=True,
        )
        with self._lock:
            compiled = self._cache.get(key)
            if compiled is not None:
                self._cache.move_to_end(key)
        if compiled is None:
            try:
                compiled = self._compile(constraint)
            except (RuntimeError, ValueError) as exc:
                raise InvalidInputError(f"the output constraint cannot be compiled: {exc}") from exc
            with self._lock:
                self._cache[key] = compiled
                while len(self._cache) > 256:
                    self._cache.popitem(last=False)
        return self._xgr.GrammarMatcher(compiled)

    def allocate_bitmask(self, rows: int) -> Any:
        return self._xgr.allocate_token_bitmask(rows, self.vocab_size)

    def apply_bitmask(self, logits: Any, bitmask: Any, indices: list[int]) -> None:
        self._xgr.apply_token_bitmask_inplace(logits, bitmask, indices=indices)
