"""Rubrics: what a judge asks, of which item fields, on which score scale, answering how.

A rubric is a YAML file (built in under `judge/rubrics/`, or in `RUBRICS_DIR`) or an inline
dict in a request. `load_rubric` finds one by name or validates a dict; every problem is an
`InvalidInputError` that names the rubric, the key and what it accepts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalserve.errors import ConfigurationError, InvalidInputError, NotFoundError

__all__ = [
    "Rubric",
    "load_rubric",
    "load_rubric_file",
    "list_rubrics",
    "RESERVED_RECORD_KEYS",
    "RUBRIC_PLACEHOLDERS",
    "PAIR_LABELS",
    "SYSTEM_FIELDS",
    "VERDICT_KEY",
]

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_FIELD = re.compile(r"^\w[\w-]*$")
_PLACEHOLDER = re.compile(r"\{(\w[\w-]*)\}")

#: Placeholders every rubric text may use besides the item fields.
RUBRIC_PLACEHOLDERS = frozenset({"scale_min", "scale_max", "scale", "language",
                                 "max_feedback_chars"})

#: Keys a result record may carry (today's, the human grade, pairwise, jury and sampling
#: keys); rubric output names must not collide with them.
RESERVED_RECORD_KEYS = frozenset({
    "status", "score_expected", "score_probs", "raw", "reason", "human_score",
    "verdict", "verdicts", "consistent", "first_position_wins", "verdict_probs",
    "system_a", "system_b", "judges", "aggregate", "judges_successful", "samples",
    "reducer", "spread", "error", "attempts",
})

#: The verdicts of a pairwise rubric: the response in position A is better, B is, or neither.
PAIR_LABELS = ("A", "B", "tie")
#: Item fields naming the two systems compared (accepted by every pairwise rubric).
SYSTEM_FIELDS = ("system_a", "system_b")
#: The key of the verdict in a pairwise judge's JSON answer.
VERDICT_KEY = "verdict"

#: Bounds of a rubric, so that one inline rubric cannot make every item's prompt, schema or
#: grammar costly: at most 101 scores, each within +-1e6; texts and examples of bounded size.
MAX_SCALE_POINTS = 101
MAX_SCORE = 1_000_000
MAX_TEXT_CHARS = 20_000
MAX_EXAMPLES = 8
MAX_NAMES = 64
_SHORT = 64


class Rubric(BaseModel):
    """One grading rubric. Field names of items and of result records are the rubric's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    """Identifier used in requests (`"rubric": "teacher-eval-ca"`)."""
    description: str = Field("", max_length=2000)
    instructions: str = Field("", max_length=MAX_TEXT_CHARS)
    """System text. May use `{field}` placeholders of the item and `{scale_min}`, `{scale_max}`,
    `{scale}`, `{language}`, `{max_feedback_chars}`; other braces are left as written."""
    template: str = Field(max_length=MAX_TEXT_CHARS)
    """The per-item user prompt with `{field}` placeholders. A paragraph (text between blank
    lines) naming an optional field the item lacks, with no default, is left out."""
    fields: list[str] = Field(max_length=MAX_NAMES)
    """Input fields every item must have."""
    optional_fields: list[str] = Field(default_factory=list, max_length=MAX_NAMES)
    id_field: str | None = Field(None, max_length=_SHORT)
    """Field identifying the item; None: the item's `id` if any, else its index."""
    aliases: dict[str, str] = Field(default_factory=dict, max_length=MAX_NAMES)
    """Other accepted names of item fields: `{"inputs": "question"}` accepts `inputs` for
    `question`."""
    defaults: dict[str, str] = Field(default_factory=dict, max_length=MAX_NAMES)
    """Values of optional fields an item leaves out."""
    scale: list[int] = Field(max_length=MAX_SCALE_POINTS)
    """The allowed scores: 2 to 101 distinct integers within +-1,000,000 (e.g. 0-5 or 1-5).
    A pairwise rubric's is `[0, 1]` (its score is 1 / 0.5 / 0), the default there."""
    mode: Literal["pointwise", "pairwise"] = "pointwise"
    """`pointwise`: one response gets a score of the scale; `pairwise`: two responses to the
    same input (the `pair_fields`) get a verdict A, B or tie, judged in both orders."""
    pair_fields: list[str] = Field(default_factory=lambda: ["response_a", "response_b"],
                                   max_length=2)
    """Pairwise: the two item fields compared (both in `fields`), shown as A and B; the
    second order swaps their values."""
    allow_tie: bool = True
    """Pairwise: whether `tie` is a verdict the judge may give (Prometheus' relative grading
    allows only A or B)."""
    human_field: str = Field("human_score", max_length=_SHORT)
    """Item field holding a human grade (a number, optional per item), compared with the
    judge's score; the record carries it as `human_score`."""
    language: str = Field("en", min_length=1, max_length=_SHORT)
    """Feedback language: an ISO 639-1 code (`ca`, `ru`) or a language name."""
    examples: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_EXAMPLES)
    """Few-shot examples (at most 8): the item fields plus `score` and `feedback`."""
    score_field: str = Field("score", max_length=_SHORT)
    feedback_field: str = Field("feedback", max_length=_SHORT)
    format: Literal["json", "prometheus", "text", "score"] = "json"
    """`json`: `{"<feedback_field>", "<score_field>"}`, schema-constrained where the engine can;
    `prometheus`: `Feedback: ... [RESULT] N`; `text`: free text (a prompt file), parsed, and
    JSON-constrained where the engine can; `score`: `{"<score_field>": N}` alone, no feedback
    (a judge used as a metric, e.g. the built-in `factuality`). Pairwise, the verdict takes
    the score's place: `{"<feedback_field>", "verdict": "A"}`, `{"verdict": "A"}` alone, or
    Prometheus' relative grading `... [RESULT] A`."""
    max_feedback_chars: int = Field(300, ge=20, le=4000)

    # --- validation ---
    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                "must be 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit"
            )
        return v

    @field_validator("scale")
    @classmethod
    def _check_scale(cls, v: list[int]) -> list[int]:
        if not 2 <= len(v) <= MAX_SCALE_POINTS:
            raise ValueError(f"needs between 2 and {MAX_SCALE_POINTS} scores, "
                             "e.g. [1, 2, 3, 4, 5]")
        out_of_range = [s for s in v if abs(s) > MAX_SCORE]
        if out_of_range:
            raise ValueError(f"score {out_of_range[0]} is out of range: scores must lie "
                             f"between {-MAX_SCORE} and {MAX_SCORE}, e.g. [0, 100]")
        if len(set(v)) != len(v):
            raise ValueError("scores must be distinct")
        return sorted(v)

    @model_validator(mode="before")
    @classmethod
    def _pairwise_scale(cls, data: Any) -> Any:
        """A pairwise rubric needs no scale: it scores 1 / 0.5 / 0 on `[0, 1]`."""
        if isinstance(data, dict) and data.get("mode") == "pairwise" and "scale" not in data:
            data = {**data, "scale": [0, 1]}
        return data

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("needs at least one input field")
        return v

    @model_validator(mode="after")
    def _check_consistency(self) -> Rubric:
        names = [*self.fields, *self.optional_fields]
        for name in names:
            if not _FIELD.match(name) or len(name) > _SHORT:
                raise ValueError(f"field name {name[:_SHORT]!r} must be at most {_SHORT} "
                                 "letters, digits, '_' or '-'")
        if len(set(names)) != len(names):
            raise ValueError("fields and optional_fields must not repeat a name")
        if self.id_field is not None and self.id_field not in names:
            raise ValueError(f"id_field {self.id_field!r} must be one of the fields {names}")
        for alias, target in self.aliases.items():
            if target not in names:
                raise ValueError(f"alias {alias!r} points to {target!r}, which is not a field")
            if alias in names:
                raise ValueError(f"alias {alias!r} is already a field name")
        for key, value in self.defaults.items():
            if key not in self.optional_fields:
                raise ValueError(f"default for {key!r}: only optional_fields take defaults")
            if len(value) > MAX_TEXT_CHARS:
                raise ValueError(f"default for {key!r} has {len(value)} characters; the limit "
                                 f"is {MAX_TEXT_CHARS}")
        outputs = [self.score_field, self.feedback_field, self.id_field or "id"]
        if len(set(outputs)) != 3:
            raise ValueError("score_field, feedback_field and the id field must differ")
        for key in (self.score_field, self.feedback_field):
            if key in RESERVED_RECORD_KEYS or not _FIELD.match(key):
                raise ValueError(f"output field name {key!r} is reserved or not a plain name")
        used = set(_PLACEHOLDER.findall(self.template))
        unknown = sorted(used - set(names) - RUBRIC_PLACEHOLDERS)
        if unknown:
            raise ValueError(
                f"template uses {unknown}, which are not fields; known fields: {names} "
                f"(and {sorted(RUBRIC_PLACEHOLDERS)})"
            )
        if not used & set(names):
            raise ValueError("template must show at least one field, e.g. '{" + names[0] + "}'")
        if not _FIELD.match(self.human_field) or self.human_field in names:
            raise ValueError(f"human_field {self.human_field!r} must be a plain name that is "
                             "not one of the fields")
        if self.mode == "pairwise":
            self._check_pairwise(names)
        for i, example in enumerate(self.examples):
            self._check_example(i, example)
        return self

    def _check_pairwise(self, names: list[str]) -> None:
        a, b = ([*self.pair_fields, "", ""])[:2]
        if len(self.pair_fields) != 2 or a == b or a not in self.fields or b not in self.fields:
            raise ValueError(f"pair_fields must name two different fields of {self.fields}, "
                             "e.g. [response_a, response_b]")
        if self.scale != [0, 1]:
            raise ValueError("a pairwise rubric scores 1 (A wins), 0.5 (tie) or 0 (B wins): "
                             "leave scale out or set it to [0, 1]")
        clash = sorted(set(names) & {*SYSTEM_FIELDS, VERDICT_KEY})
        if clash:
            raise ValueError(f"{clash} are pairwise record keys; name the fields otherwise")
        if self.examples:
            raise ValueError("a pairwise rubric takes no examples (they would favour a "
                             "position); describe the criteria in the instructions")

    def _check_example(self, i: int, example: dict[str, Any]) -> None:
        size = sum(len(str(k)) + len(str(v)) for k, v in list(example.items())[:MAX_NAMES + 1])
        if len(example) > MAX_NAMES or size > MAX_TEXT_CHARS:
            raise ValueError(f"examples[{i}] is too large: at most {MAX_NAMES} keys and "
                             f"{MAX_TEXT_CHARS} characters in all")
        missing = [f for f in self.fields if f not in example]
        if missing:
            raise ValueError(f"examples[{i}] lacks the item fields {missing}")
        score = example.get("score", example.get(self.score_field))
        if isinstance(score, bool) or not isinstance(score, int) or score not in self.scale:
            raise ValueError(f"examples[{i}] needs a score in the scale {self.scale}")
        if self.format == "score":
            return
        feedback = example.get("feedback", example.get(self.feedback_field))
        if not isinstance(feedback, str) or not feedback.strip():
            raise ValueError(f"examples[{i}] needs a non-empty feedback text")

    # --- helpers ---
    @property
    def pairwise(self) -> bool:
        return self.mode == "pairwise"

    @property
    def verdict_labels(self) -> tuple[str, ...]:
        """The verdicts a pairwise judge may give: A, B and (unless `allow_tie` is off) tie."""
        return PAIR_LABELS if self.allow_tie else PAIR_LABELS[:2]

    @property
    def scale_min(self) -> int:
        return self.scale[0]

    @property
    def scale_max(self) -> int:
        return self.scale[-1]

    @property
    def scale_contiguous(self) -> bool:
        """Every integer from the lowest score to the highest is a score (`0-5`, not `1, 3`).
        Decided from the distinct sorted scores, never by building the range."""
        return self.scale_max - self.scale_min == len(self.scale) - 1

    @property
    def scale_text(self) -> str:
        """`0-5` for a contiguous scale, else `1, 3, 5`."""
        if self.scale_contiguous:
            return f"{self.scale_min}-{self.scale_max}"
        return ", ".join(str(s) for s in self.scale)

    def example_answer(self, example: dict[str, Any]) -> tuple[int, str]:
        """The (score, feedback) of a few-shot example."""
        score = example.get("score", example.get(self.score_field))
        feedback = example.get("feedback", example.get(self.feedback_field, ""))
        return int(score), str(feedback)

    def hash(self) -> str:
        """Stable sha256 of the canonical rubric (for tracking which rubric graded a run)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True,
                               ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def summary(self) -> dict[str, Any]:
        """The short description served by `GET /rubrics`."""
        return {
            "name": self.name,
            "description": self.description,
            "fields": self.fields,
            "optional_fields": self.optional_fields,
            "id_field": self.id_field,
            "scale": self.scale,
            "language": self.language,
            "format": self.format,
            "output_fields": [self.score_field, self.feedback_field],
        }


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:8]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _validate(data: Any, origin: str) -> Rubric:
    if not isinstance(data, dict):
        raise InvalidInputError(f"rubric {origin} must be a mapping of keys "
                                f"(name, instructions, template, fields, scale, ...)")
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(f"invalid rubric {origin}: {_describe(exc)}") from None


def load_rubric_file(path: Path) -> Rubric:
    """Read one rubric YAML file; `name` defaults to the file name without `.yaml`."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"cannot read rubric file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"rubric file {path} is not valid YAML: {exc}") from None
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
        if data["name"] != path.stem:
            raise InvalidInputError(
                f"rubric file {path}: name {data['name']!r} must match the file name "
                f"{path.stem!r}; rename one of them"
            )
    return _validate(data, f"file {path}")


@lru_cache(maxsize=1)
def _builtin() -> dict[str, Rubric]:
    rubrics = {}
    folder = resources.files("evalserve.judge") / "rubrics"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            with resources.as_file(entry) as path:
                rubric = load_rubric_file(Path(path))
            rubrics[rubric.name] = rubric
    return rubrics


def _dir_files(rubrics_dir: Path) -> list[Path]:
    if not rubrics_dir.is_dir():
        raise ConfigurationError(
            f"RUBRICS_DIR={rubrics_dir} is not a directory; create it or unset RUBRICS_DIR"
        )
    return sorted(p for p in rubrics_dir.iterdir() if p.suffix in (".yaml", ".yml"))


def list_rubrics(rubrics_dir: Path | None = None) -> list[Rubric]:
    """Built-in rubrics plus those in `rubrics_dir` (which override built-ins of the same name).
    Invalid files are skipped with a warning; loading one by name reports what is wrong."""
    rubrics = dict(_builtin())
    if rubrics_dir is not None:
        for path in _dir_files(rubrics_dir):
            try:
                rubric = load_rubric_file(path)
            except InvalidInputError as exc:
                log.warning("skipping rubric %s: %s", path, exc.message)
                continue
            rubrics[rubric.name] = rubric
    return sorted(rubrics.values(), key=lambda r: r.name)


def load_rubric(spec: str | dict[str, Any] | Rubric, rubrics_dir: Path | None = None) -> Rubric:
    """A rubric by name (`RUBRICS_DIR` first, then built-ins) or from an inline dict."""
    if isinstance(spec, Rubric):
        return spec
    if isinstance(spec, dict):
        name = spec.get("name", "<inline>")
        return _validate(spec, f"{name!r} (inline)" if isinstance(name, str) else "(inline)")
    if not isinstance(spec, str):
        raise InvalidInputError("rubric must be a rubric name or an inline rubric object")
    if rubrics_dir is not None:
        for path in _dir_files(rubrics_dir):
            if path.stem == spec:
                return load_rubric_file(path)
    builtin = _builtin()
    if spec in builtin:
        return builtin[spec]
    known = ", ".join(r.name for r in list_rubrics(rubrics_dir))
    raise NotFoundError(f"no rubric named {spec!r}; known rubrics: {known}")
