"""Seeded text generators shared by the metrics tests."""

from __future__ import annotations

import random

WORDS = (
    "the a patient doctor was were given aspirin and recovered quickly after surgery rest "
    "water fever pain heart blood pressure high low medicine study results show improvement "
    "physiological heterogeneous unexpectedly responses extraordinary incomprehensible "
    "photosynthesis running runs ran happily cats dogs don't isn't I'm Smith's e-mail "
    "co-operation U.S.A. 3.14 1990s COVID-19 Über naïve café İstanbul Mr. Dr. x y z"
).split()
PUNCT = ["", "", "", ",", ".", "!", "?", ";", ":", " -", "\n", "\n\n", " (", ")", "'", '"']


def random_text(rng: random.Random, min_words: int = 0, max_words: int = 60) -> str:
    """Words from a fixed vocabulary with random punctuation, case and newlines."""
    out = []
    for _ in range(rng.randint(min_words, max_words)):
        word = rng.choice(WORDS)
        if rng.random() < 0.1:
            word = word.capitalize()
        elif rng.random() < 0.05:
            word = word.upper()
        out.append(word + rng.choice(PUNCT))
    return " ".join(out)


SENTENCES = [
    "The patient was admitted with a high fever and severe headache.",
    "Doctors recommended rest, fluids and a short course of antibiotics.",
    "Blood pressure remained stable throughout the observation period.",
    "The study found no significant difference between the two groups.",
    "Participants who exercised regularly reported better sleep quality.",
    "Side effects were mild and resolved without treatment in most cases.",
    "Further research is needed to confirm these preliminary findings.",
    "The new vaccine reduced hospitalisations by nearly forty percent.",
    "Children under five were excluded from the trial for safety reasons.",
    "Heart rate variability was measured every morning for six weeks.",
]


def realistic_text(rng: random.Random, min_sents: int = 1, max_sents: int = 5) -> str:
    """A few realistic English sentences."""
    return " ".join(rng.sample(SENTENCES, rng.randint(min_sents, max_sents)))
