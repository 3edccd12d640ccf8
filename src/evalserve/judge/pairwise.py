"""Pairwise judging in both orders, and the summary of a job's pairwise verdicts.

A pair is judged twice: as given (`ab`) and with the two responses swapped (`ba`), the second
verdict mapped back to the original labels. A verdict that changes with the order is
position-dependent: the pair is `inconsistent` and its final verdict is `tie`. The summary
(`pairwise_summary`) reports win/tie/loss per system, the position-consistency rate, the share
of judged orders won by the response in first position, and with two or more systems a
Bradley–Terry leaderboard (`judge.leaderboard`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from evalserve.judge.grade import Grade
from evalserve.judge.leaderboard import bradley_terry
from evalserve.judge.rubric import PAIR_LABELS, SYSTEM_FIELDS, Rubric

__all__ = ["swap_pair", "swap_label", "combine_orders", "pairwise_summary", "VERDICT_SCORES"]

#: The score of each final verdict: A wins 1, tie 0.5, B wins 0.
VERDICT_SCORES = {"A": 1.0, "tie": 0.5, "B": 0.0}


def swap_label(label: str | None) -> str | None:
    """A verdict given with the responses swapped, in the original labels (A <-> B)."""
    return {"A": "B", "B": "A"}.get(label, label) if label is not None else None


def swap_pair(rubric: Rubric, item: dict[str, Any]) -> dict[str, Any]:
    """`item` (canonical field names) with the two `pair_fields` values exchanged."""
    a, b = rubric.pair_fields
    return {**item, a: item.get(b), b: item.get(a)}


def _system(item: dict[str, Any], field: str, default: str) -> str:
    value = item.get(field)
    return default if value is None or value == "" else str(value)


def _mean_probs(ab: dict | None, ba: dict | None) -> dict[str, float] | None:
    """Mean verdict distribution of the orders that have one, in the original labels."""
    dists = []
    if ab:
        dists.append(ab)
    if ba:
        dists.append({swap_label(k): v for k, v in ba.items()})
    if not dists:
        return None
    return {label: round(sum(d.get(label, 0.0) for d in dists) / len(dists), 6)
            for label in PAIR_LABELS}


def combine_orders(item_id: str, item: dict[str, Any], ab: Grade, ba: Grade) -> Grade:
    """The pair's grade from the grades of its two orders (each `score` a raw label; `ba`'s
    in the swapped labels): final verdict, both verdicts, consistency, position wins."""
    v_ab = ab.score if ab.status == "scored" else None
    v_ba = swap_label(ba.score) if ba.status == "scored" else None
    probs = _mean_probs(ab.score_probs if v_ab else None, ba.score_probs if v_ba else None)
    pair: dict[str, Any] = {
        "verdict": None,
        "verdicts": {"ab": v_ab, "ba": v_ba},
        "consistent": None,
        # first position: A in the order as given, the original B in the swapped one
        "first_position_wins": int(v_ab == "A") + int(v_ba == "B"),
        "verdict_probs": probs,
        "system_a": _system(item, SYSTEM_FIELDS[0], "A"),
        "system_b": _system(item, SYSTEM_FIELDS[1], "B"),
    }
    attempts = max(ab.attempts, ba.attempts)
    if v_ab is None or v_ba is None:
        failed, order = (ab, "ab") if v_ab is None else (ba, "ba")
        return Grade(item_id, "unscored", None, None, raw=failed.raw,
                     reason=f"order {order} ({'as given' if order == 'ab' else 'swapped'}): "
                            f"{failed.reason}", attempts=attempts, pair=pair)
    consistent = v_ab == v_ba
    verdict = v_ab if consistent else "tie"
    pair.update(verdict=verdict, consistent=consistent)
    expected = None if probs is None else round(probs["A"] + 0.5 * probs["tie"], 6)
    return Grade(item_id, "scored", VERDICT_SCORES[verdict], ab.feedback,
                 score_expected=expected, attempts=attempts, pair=pair)


def _is_pair(record: Any) -> bool:
    return isinstance(record, dict) and isinstance(record.get("verdicts"), dict)


def pairwise_summary(records: Iterable[dict[str, Any]], *, seed: int = 0) -> dict | None:
    """The pairwise section of a job's report; None when no record is pairwise.

    `pairs`: pairs judged in both orders; `unjudged`: pairwise records without both verdicts;
    `wins`/`ties`/`losses`/`win_rate` per system (win rate = (wins + ties / 2) / games);
    `consistency_rate`: share of judged pairs whose verdict did not depend on the order;
    `inconsistent`: how many did; `first_position_win_rate`: share of all judged orders won by
    the response shown first (0.5 is the unbiased expectation only without ties);
    `leaderboard`: Bradley–Terry ratings with 95% bootstrap intervals, [] under two systems.
    """
    pairs = [r for r in records if _is_pair(r)]
    if not pairs:
        return None
    judged = [r for r in pairs if r.get("verdict") in VERDICT_SCORES]
    orders = sum(1 for r in pairs for v in r["verdicts"].values() if v is not None)
    first_wins = sum(int(r.get("first_position_wins") or 0) for r in pairs)
    wins: dict[str, int] = {}
    ties: dict[str, int] = {}
    losses: dict[str, int] = {}
    comparisons = []
    for r in judged:
        a, b = str(r.get("system_a", "A")), str(r.get("system_b", "B"))
        score = VERDICT_SCORES[r["verdict"]]
        comparisons.append((a, b, score))
        if a == b:
            continue
        for name in (a, b):
            for table in (wins, ties, losses):
                table.setdefault(name, 0)
        if score == 0.5:
            ties[a] += 1
            ties[b] += 1
        else:
            winner, loser = (a, b) if score == 1.0 else (b, a)
            wins[winner] += 1
            losses[loser] += 1
    win_rate = {name: round((wins[name] + ties[name] / 2)
                            / (wins[name] + ties[name] + losses[name]), 6) for name in wins}
    inconsistent = sum(1 for r in judged if r.get("consistent") is False)
    return {
        "pairs": len(judged),
        "unjudged": len(pairs) - len(judged),
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "win_rate": win_rate,
        "consistency_rate": round(1 - inconsistent / len(judged), 6) if judged else None,
        "inconsistent": inconsistent,
        "orders_judged": orders,
        "first_position_win_rate": round(first_wins / orders, 6) if orders else None,
        "leaderboard": bradley_terry(comparisons, seed=seed),
    }
