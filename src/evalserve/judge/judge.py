"""`Judge`: grade one item with a rubric through any `Engine`; `Grade`: the outcome.

Scores always parse where the engine enforces constraints: the answer is a JSON object whose
score is an enum of the scale and whose feedback is length-bounded, within a token budget that
fits it. An answer cut at `max_tokens` anyway (an upstream ignoring `maxLength`) keeps its
feedback and gets its score in a second, one-token step constrained to the scale. Free text is
parsed. What still fails is retried, then returned `unscored` with the raw text and the reason;
never a made-up score. A pairwise rubric's pair is judged in both orders at once (two
concurrent requests, which the engine batches), each order constrained to the verdict labels
like a score to the scale (`judge.pairwise`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from evalserve.engines.base import (
    CompletionOutput,
    Engine,
    GenerationRequest,
    GenerationResult,
    OutputConstraint,
)
from evalserve.errors import EngineError, InvalidInputError
from evalserve.judge.grade import Grade, human_score
from evalserve.judge.pairwise import combine_orders, swap_pair
from evalserve.judge.parse import (
    Verdict,
    VerdictError,
    clip_feedback,
    parse_json_label,
    parse_json_verdict,
    parse_text_label,
    parse_text_verdict,
    partial_json_string,
)
from evalserve.judge.prompts import build_messages, output_schema, prometheus_regex, transcript
from evalserve.judge.rubric import SYSTEM_FIELDS, VERDICT_KEY, Rubric
from evalserve.judge.scoring import ScoreDistribution, label_distribution, score_distribution

__all__ = ["Grade", "Judge", "feedback_token_budget", "human_score"]

log = logging.getLogger(__name__)

#: Languages whose text takes more tokens per character in byte-level BPE vocabularies.
_DENSE_SCRIPTS = {"ru": 1.0, "uk": 1.0, "bg": 1.0, "el": 1.0, "ar": 1.0, "he": 1.0,
                  "hi": 1.5, "th": 1.5, "zh": 2.0, "ja": 2.0, "ko": 2.0}
_RETRY_TEMPERATURE = 0.7
#: `max_tokens` of a `format: score` answer, `{"score": N}` (some room for whitespace).
_SCORE_ONLY_TOKENS = 16


def feedback_token_budget(rubric: Rubric) -> int:
    """Generous `max_tokens` for a feedback of `max_feedback_chars` plus the JSON around it:
    chars/2 + 32 for Latin-script languages, more for denser scripts; a `score` rubric's
    `{"score": N}` takes a few tokens."""
    if rubric.format == "score":
        return _SCORE_ONLY_TOKENS
    per_char = _DENSE_SCRIPTS.get(rubric.language.lower(), 0.5)
    return int(rubric.max_feedback_chars * per_char) + 32


class _Failed(Exception):
    """One attempt gave no usable score."""

    def __init__(self, reason: str, raw: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class _Aborted(Exception):
    """The engine aborted the generation."""

    def __init__(self, raw: str) -> None:
        super().__init__("aborted")
        self.raw = raw


@dataclass
class _Plan:
    """How answers are requested and read for a rubric on an engine."""

    json_output: bool
    constraint: OutputConstraint | None


class Judge:
    """Grades items with `rubric` through `engine` (on `model`, one of the engine's
    `models()`; None: the engine's own). Safe to call concurrently: the engine batches the
    concurrent requests."""

    def __init__(
        self,
        engine: Engine,
        rubric: Rubric,
        *,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        retries: int = 2,
        seed: int | None = None,
        model: str | None = None,
        background: bool = False,
    ) -> None:
        if retries < 0:
            raise InvalidInputError("retries must be >= 0")
        if temperature < 0:
            raise InvalidInputError("temperature must be >= 0")
        self.engine = engine
        self.rubric = rubric
        self.temperature = temperature
        self.max_tokens = max_tokens or feedback_token_budget(rubric)
        self.retries = retries
        self.seed = seed
        self.model = model
        """The model every request names (`GenerationRequest.model`: a router routes by it);
        None: the engine's own."""
        self.background = background
        """Every request is background work (`GenerationRequest.background`: a job's items,
        which the engine serves after direct requests)."""
        self._plan = self._make_plan()
        # `reference` is always accepted: jobs score it with metrics even when the rubric's
        # prompt does not show it to the judge.
        self._accepted = {*rubric.fields, *rubric.optional_fields, *rubric.aliases, "id",
                          "reference", rubric.human_field,
                          *(SYSTEM_FIELDS if rubric.pairwise else ())}
        self._required = {*rubric.fields, *(a for a, f in rubric.aliases.items()
                                            if f in rubric.fields)}

    def _make_plan(self) -> _Plan:
        rubric, constrained = self.rubric, self.engine.supports_constraints
        if rubric.format == "prometheus":
            regex = OutputConstraint(regex=prometheus_regex(rubric)) if constrained else None
            return _Plan(json_output=False, constraint=regex)
        if rubric.format == "text" and not constrained:
            return _Plan(json_output=False, constraint=None)
        schema = OutputConstraint(json_schema=output_schema(rubric)) if constrained else None
        return _Plan(json_output=True, constraint=schema)

    # --- items ---
    def validate_item(self, item: dict, index: int) -> None:
        """Raise InvalidInputError naming the missing, unknown or wrongly typed field."""
        rubric = self.rubric
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise InvalidInputError(f"{where} must be an object with the fields {rubric.fields}")
        unknown = sorted(k for k in item if k not in self._accepted)
        if unknown:
            raise InvalidInputError(
                f"{where} has unknown field(s) {unknown}; rubric {rubric.name!r} takes "
                f"{sorted(self._accepted)}"
            )
        canonical = self._canonical(item)
        missing = [f for f in rubric.fields if f not in canonical]
        if missing:
            raise InvalidInputError(
                f"{where} lacks the field(s) {missing}; rubric {rubric.name!r} needs "
                f"{rubric.fields}"
            )
        for key, value in item.items():
            if key == rubric.human_field:
                human_score(item, rubric, where)
                continue
            if key == rubric.id_field or key == "id":
                ok = isinstance(value, str | int) and not isinstance(value, bool)
                kind = "a string or an integer"
            else:
                scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
                ok = scalar or (value is None and key not in self._required)
                kind = "a string" if key in self._required else "a string or null"
            if not ok:
                raise InvalidInputError(
                    f"{where}.{key} must be {kind}, got {type(value).__name__}"
                )

    def _canonical(self, item: dict) -> dict[str, Any]:
        aliases = self.rubric.aliases
        out: dict[str, Any] = {}
        for key, value in item.items():
            target = aliases.get(key, key)
            if target not in out or key == target:
                out[target] = value
        return out

    def item_id(self, item: dict, index: int) -> str:
        """The item's id field, else its `id`, else its index."""
        field = self.rubric.id_field
        if field is not None and item.get(field) is not None:
            return str(item[field])
        if item.get("id") is not None:
            return str(item["id"])
        return str(index)

    def messages(self, item: dict) -> list[dict]:
        """The chat messages this judge sends for `item`."""
        return build_messages(self.rubric, self._canonical(item),
                              json_output=self._plan.json_output)

    # --- grading ---
    async def grade(self, item: dict, index: int = 0) -> Grade:
        """Grade one (validated) item; a pairwise rubric's pair in both orders. Model
        misbehaviour never raises: the grade is `unscored` with the raw text and the reason.
        Engine failures (unavailable, upstream errors) propagate."""
        item_id = self.item_id(item, index)
        canonical = self._canonical(item)
        if self.rubric.pairwise:
            ab, ba = await asyncio.gather(
                self._grade_messages(item_id, self._build(canonical)),
                self._grade_messages(item_id, self._build(swap_pair(self.rubric, canonical))),
            )
            grade = combine_orders(item_id, item, ab, ba)
        else:
            grade = await self._grade_messages(item_id, self._build(canonical))
        grade.human_score = human_score(item, self.rubric, f"items[{index}]")
        return grade

    def _build(self, canonical: dict[str, Any]) -> list[dict]:
        return build_messages(self.rubric, canonical, json_output=self._plan.json_output)

    async def _grade_messages(self, item_id: str, messages: list[dict]) -> Grade:
        """One judgement of `messages`, retried; for a pairwise order, `score` is its label."""
        failure: _Failed | None = None
        attempts = 1 + self.retries
        for attempt in range(attempts):
            try:
                verdict, dist = await self._attempt(messages, attempt)
            except _Failed as exc:
                failure = exc
                log.debug("item %s attempt %d: %s", item_id, attempt + 1, exc.reason)
                continue
            except InvalidInputError as exc:  # this item cannot be sent (e.g. too long)
                return Grade(item_id, "unscored", None, None, raw="", reason=exc.message,
                             attempts=attempt + 1)
            except _Aborted as exc:  # stopped from outside (a cancelled job): no retry
                return Grade(item_id, "unscored", None, None, raw=exc.raw,
                             reason="the generation was aborted", attempts=attempt + 1)
            if isinstance(dist, ScoreDistribution):
                return Grade(item_id, "scored", verdict.score, verdict.feedback,
                             score_expected=dist.expected, score_probs=dist.probs,
                             attempts=attempt + 1)
            return Grade(item_id, "scored", verdict.score, verdict.feedback, score_probs=dist,
                         attempts=attempt + 1)
        assert failure is not None
        return Grade(item_id, "unscored", None, None, raw=failure.raw,
                     reason=f"{failure.reason} (after {attempts} attempt"
                            f"{'s' if attempts > 1 else ''})", attempts=attempts)

    def _request(self, attempt: int, **kwargs: Any) -> GenerationRequest:
        temperature = self.temperature if attempt == 0 else max(self.temperature,
                                                                 _RETRY_TEMPERATURE)
        seed = None if self.seed is None else self.seed + attempt
        logprobs = 20 if self.engine.supports_logprobs else None
        return GenerationRequest(model=self.model, temperature=temperature, seed=seed,
                                 logprobs=logprobs, background=self.background, **kwargs)

    async def _attempt(
        self, messages: list[dict], attempt: int
    ) -> tuple[Verdict, ScoreDistribution | dict[str, float] | None]:
        request = self._request(attempt, messages=messages, max_tokens=self.max_tokens,
                                constraint=self._plan.constraint)
        out = _first(await self.engine.generate(request))
        if out.finish_reason == "abort":
            raise _Aborted(out.text)
        try:
            verdict = self._parse(out.text)
        except VerdictError as exc:
            if out.finish_reason == "length":
                return await self._finish_cut(messages, out, attempt, str(exc))
            raise _Failed(str(exc), out.text) from None
        return verdict, self._distribution(out, verdict.score_offset)

    def _distribution(self, out: CompletionOutput, offset: int | None
                      ) -> ScoreDistribution | dict[str, float] | None:
        """The score's distribution over the scale, or a pairwise verdict's over its labels."""
        if self.rubric.pairwise:
            return label_distribution(out.logprobs, offset, self.rubric.verdict_labels,
                                      text=out.text)
        return score_distribution(out.logprobs, offset, self.rubric.scale, text=out.text)

    def _parse(self, text: str) -> Verdict:
        rubric = self.rubric
        if rubric.pairwise:
            return self._parse_label(text)
        if self._plan.json_output:
            try:
                return parse_json_verdict(
                    text, score_field=rubric.score_field, feedback_field=rubric.feedback_field,
                    scale=rubric.scale, max_chars=rubric.max_feedback_chars,
                )
            except VerdictError as json_error:
                if self._plan.constraint is not None:
                    raise
                try:  # an unconstrained model may answer "Score: 4 ..." instead of JSON
                    return parse_text_verdict(text, scale=rubric.scale,
                                              max_chars=rubric.max_feedback_chars)
                except VerdictError:
                    raise json_error from None
        return parse_text_verdict(text, scale=rubric.scale, max_chars=rubric.max_feedback_chars)

    def _parse_label(self, text: str) -> Verdict:
        rubric, labels = self.rubric, self.rubric.verdict_labels
        limit = rubric.max_feedback_chars
        if not self._plan.json_output:
            return parse_text_label(text, labels=labels, max_chars=limit)
        try:
            return parse_json_label(text, key=VERDICT_KEY, feedback_field=rubric.feedback_field,
                                    labels=labels, max_chars=limit)
        except VerdictError as json_error:
            if self._plan.constraint is not None:
                raise
            try:  # an unconstrained model may answer "Verdict: A" instead of JSON
                return parse_text_label(text, labels=labels, max_chars=limit)
            except VerdictError:
                raise json_error from None

    def _cut_feedback(self, text: str) -> tuple[str, str] | None:
        """(feedback, closed prefix) of an answer cut mid-feedback, or None."""
        rubric = self.rubric
        if self._plan.json_output:
            feedback = partial_json_string(text, rubric.feedback_field)
            if feedback is None or not feedback.strip():
                return None
            feedback = clip_feedback(feedback, rubric.max_feedback_chars)
            opened = json.dumps({rubric.feedback_field: feedback}, ensure_ascii=False)[:-1]
            if rubric.pairwise:
                return feedback, f'{opened}, "{VERDICT_KEY}": "'
            return feedback, f'{opened}, "{rubric.score_field}": '
        body = text.split("[RESULT]")[0]
        body = body.split("Feedback:", 1)[1] if "Feedback:" in body else body
        if not body.strip():
            return None
        feedback = clip_feedback(body, rubric.max_feedback_chars)
        if rubric.format == "prometheus":
            return feedback, f"{feedback} [RESULT] "
        if rubric.pairwise:
            return feedback, f"Justification: {feedback}\nVerdict: "
        return feedback, f"Justification: {feedback}\nScore: "

    async def _finish_cut(
        self, messages: list[dict], out: CompletionOutput, attempt: int, error: str
    ) -> tuple[Verdict, ScoreDistribution | None]:
        """Second step for an answer cut at max_tokens: close the feedback, then one token
        constrained to the scale (a pairwise rubric's verdict labels)."""
        cut = self._cut_feedback(out.text)
        if cut is None:
            raise _Failed(f"the answer was cut at max_tokens={self.max_tokens} ({error})",
                          out.text)
        feedback, prefix = cut
        pairwise = self.rubric.pairwise
        labels = (self.rubric.verdict_labels if pairwise
                  else tuple(str(s) for s in self.rubric.scale))
        constraint = None
        if self.engine.supports_constraints:
            constraint = OutputConstraint(choice=labels)
        request = self._request(attempt, prompt=transcript(messages) + prefix,
                                max_tokens=max(len(s) for s in labels) + 1,
                                constraint=constraint)
        second = _first(await self.engine.generate(request))
        pattern = (r"\s*(" + "|".join(re.escape(x) for x in labels) + r")(?!\w)" if pairwise
                   else r"\s*(-?\d+)")
        match = re.match(pattern, second.text)
        if match is None or match.group(1) not in labels:
            raise _Failed(
                f"the answer was cut at max_tokens={self.max_tokens} and the score step gave "
                f"{second.text!r}, not one of {list(labels)}",
                out.text + prefix[len(prefix.rstrip()):] + second.text,
            )
        log.info("answer cut at max_tokens=%d; score %s read in a second step",
                 self.max_tokens, match.group(1))
        value: int | str = match.group(1) if pairwise else int(match.group(1))
        return Verdict(value, feedback, None), self._distribution(second, match.start(1))


def _first(result: GenerationResult) -> CompletionOutput:
    """The one completion of a result; none at all is an engine failure (propagated like any
    other), never an IndexError."""
    if not result.outputs:
        raise EngineError("the engine returned no completion for this item")
    return result.outputs[0]

