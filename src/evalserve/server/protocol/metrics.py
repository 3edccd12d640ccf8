"""Wire models of seed 002's metric service: `/metrics/*`, `/loss`, `/generate`.

Request field names are the seed's (`texts_original`, `texts_generated`, `texts_human`,
`texts`, `weights`, `text`); unknown fields are ignored. Responses give per-item values as
parallel lists (item `i` of every list belongs to input `i`) and their means under `mean`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evalserve.errors import InvalidInputError

__all__ = [
    "PairRequest",
    "RougeRequest",
    "ReadabilityRequest",
    "LossRequest",
    "GenerateRequest",
    "PRF",
    "RougeResponse",
    "RelevanceResponse",
    "FactualityResponse",
    "ReadabilityMean",
    "ReadabilityResponse",
    "TargetStat",
    "LossResponse",
    "Usage",
    "GenerateResponse",
]

Texts = list[str]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _same_length(a_name: str, a: list[str] | None, b_name: str, b: list[str] | None) -> None:
    if a is not None and b is not None and len(a) != len(b):
        raise ValueError(
            f"`{a_name}` has {len(a)} texts but `{b_name}` has {len(b)}: send exactly one "
            f"item of `{b_name}` per item of `{a_name}`"
        )


class PairRequest(_Request):
    """`POST /metrics/relevance` and `/metrics/factuality`: originals and generated texts."""

    texts_original: Texts = Field(min_length=1, description="Source texts.")
    texts_generated: Texts = Field(min_length=1, description="One generated text per original.")

    @model_validator(mode="after")
    def _paired(self) -> PairRequest:
        _same_length("texts_original", self.texts_original, "texts_generated",
                     self.texts_generated)
        return self


class RougeRequest(_Request):
    """`POST /metrics/rouge`: `predictions` + `references` (or the seed's names
    `texts_generated` + `texts_original`)."""

    predictions: Texts | None = Field(None, min_length=1)
    references: Texts | None = Field(None, min_length=1)
    texts_generated: Texts | None = Field(None, min_length=1)
    texts_original: Texts | None = Field(None, min_length=1)
    lang: Literal["en", "zh", "auto"] = "en"
    recipe: Literal["standard", "grader"] = "standard"
    stem: bool = False

    @model_validator(mode="after")
    def _pick(self) -> RougeRequest:
        preds = self.predictions if self.predictions is not None else self.texts_generated
        refs = self.references if self.references is not None else self.texts_original
        if preds is None or refs is None:
            raise ValueError(
                "send `predictions` and `references` (or `texts_generated` and "
                "`texts_original`): two lists of texts of the same length"
            )
        p_name = "predictions" if self.predictions is not None else "texts_generated"
        r_name = "references" if self.references is not None else "texts_original"
        _same_length(p_name, preds, r_name, refs)
        self.predictions, self.references = preds, refs
        return self


class ReadabilityRequest(_Request):
    """`POST /metrics/readability`: texts and their language (default English)."""

    texts: Texts = Field(min_length=1)
    lang: str = Field("en", min_length=2, description="en, es, de... (pyphen language code)")


class LossRequest(_Request):
    """`POST /loss`. Targets come from `targets`, else `texts_human`, else `LOSS_TARGETS`."""

    texts_original: Texts = Field(min_length=1)
    texts_human: Texts | None = Field(None, min_length=1)
    texts_generated: Texts = Field(min_length=1)
    weights: list[float] | None = Field(
        None, description="[relevance, factuality, fkgl, smog, dale_chall], >= 0, sum 1"
    )
    targets: dict[str, Any] | None = Field(
        None, description="Calibration targets, the JSON written by `evalserve calibrate`."
    )
    lang: str = Field("en", min_length=2, description="Language of the texts (readability).")

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        from evalserve.metrics import validate_weights

        try:
            return validate_weights(value)
        except InvalidInputError as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _paired(self) -> LossRequest:
        _same_length("texts_original", self.texts_original, "texts_generated",
                     self.texts_generated)
        _same_length("texts_original", self.texts_original, "texts_human", self.texts_human)
        return self


class GenerateRequest(_Request):
    """`POST /generate`: seed 002's `{"text"}` to summarise, or vLLM's legacy
    `{"prompt", "max_tokens", ...}` (seed 004) completed as raw text; sampling overrides are
    optional."""

    text: str | None = None
    prompt: str | None = None
    max_new_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    repeat_penalty: float | None = Field(None, gt=0.0)
    stream: bool = False

    @model_validator(mode="after")
    def _one_input(self) -> GenerateRequest:
        given = [name for name in ("text", "prompt") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("send `text` (a text to summarise) or `prompt` (raw completion)")
        value = self.text if self.text is not None else self.prompt
        if not str(value).strip():
            raise ValueError(f"`{given[0]}` is blank")
        if self.stream:
            raise ValueError("`/generate` does not stream: use `/v1/completions` with stream")
        return self


class PRF(BaseModel):
    """Precision, recall and F1."""

    precision: float
    recall: float
    f1: float


class RougeResponse(BaseModel):
    precision: list[float]
    recall: list[float]
    f1: list[float]
    mean: PRF
    languages: list[str]
    """Tokenization used per pair: `en`, `zh` or `grader`."""
    lang: str
    recipe: str


class RelevanceResponse(BaseModel):
    """BERTScore of each generated text against its original."""

    precision: list[float]
    recall: list[float]
    f1: list[float]
    mean: PRF


class FactualityResponse(BaseModel):
    """Factuality in [0, 1] per pair; `method` says what produced it."""

    scores: list[float]
    mean: float
    method: str


class ReadabilityMean(BaseModel):
    fkgl: float
    smog: float
    dale_chall: float


class ReadabilityResponse(BaseModel):
    fkgl: list[float]
    smog: list[float]
    dale_chall: list[float]
    mean: ReadabilityMean
    lang: str


class TargetStat(BaseModel):
    mean: float
    std: float


class LossResponse(BaseModel):
    """The mean loss, per-item losses and what went into them (metric order as `weights`)."""

    loss: float
    losses: list[float]
    terms: dict[str, list[float]]
    metrics: dict[str, list[float]]
    targets: dict[str, TargetStat]
    weights: dict[str, float]
    factuality_method: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class PromptGenerateResponse(BaseModel):
    """vLLM's legacy `/generate` answer: the prompt followed by its completion."""

    text: list[str]


class GenerateResponse(BaseModel):
    """The summary (also as `generated_text`, the name many generator clients read)."""

    summary: str
    generated_text: str
    model: str
    finish_reason: str
    usage: Usage
