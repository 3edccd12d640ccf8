"""schemathesis hooks for `test_schemathesis.py` (loaded through `SCHEMATHESIS_HOOKS`).

Generated token limits are cut to `MAX_TOKENS` before each call: on the bundled CPU model a
`max_tokens` of 10**9 would spend the whole time budget on one generation, and the bounds are
checked by the validation cases, not by how long a valid generation takes.
"""

from __future__ import annotations

from typing import Any

import schemathesis

MAX_TOKENS = 4
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens", "max_new_tokens")


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case,
                kwargs: dict[str, Any]) -> None:
    body = case.body
    if not isinstance(body, dict):
        return
    for name in TOKEN_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_TOKENS:
            body[name] = MAX_TOKENS
