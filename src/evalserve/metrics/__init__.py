"""Text metrics: ROUGE-L, readability, BERTScore relevance, AlignScore factuality, loss.

Importing this package pulls in no torch, transformers or jieba: the model-based metrics
import them when first called.
"""

from __future__ import annotations

from evalserve.metrics.bertscore import BertScore, RelevanceResult, relevance
from evalserve.metrics.calibration import calibrate, read_pairs
from evalserve.metrics.factuality import FactualityResult, factuality
from evalserve.metrics.loss import DEFAULT_WEIGHTS, LossResult, loss, validate_weights
from evalserve.metrics.readability import ReadabilityResult, ReadabilityScore, readability
from evalserve.metrics.rouge import RougeResult, RougeScore, rouge_l
from evalserve.metrics.sentences import split_sentences
from evalserve.metrics.targets import METRICS, CalibrationTargets, MetricTarget

__all__ = [
    "BertScore",
    "CalibrationTargets",
    "DEFAULT_WEIGHTS",
    "FactualityResult",
    "LossResult",
    "METRICS",
    "MetricTarget",
    "ReadabilityResult",
    "ReadabilityScore",
    "RelevanceResult",
    "RougeResult",
    "RougeScore",
    "calibrate",
    "factuality",
    "loss",
    "read_pairs",
    "readability",
    "relevance",
    "rouge_l",
    "split_sentences",
    "validate_weights",
]
