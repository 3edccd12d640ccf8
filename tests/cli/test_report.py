"""`cli.report.print_report`: the job report's sections in the terminal, with its numbers."""

from __future__ import annotations

import io

from rich.console import Console

from evalserve.cli.report import print_report
from evalserve.judge.report import job_report


def _printed(report: dict) -> str:
    console = Console(file=io.StringIO(), width=140, highlight=False)
    print_report(console, report)
    return " ".join(console.file.getvalue().split())


def _pair(a: str, b: str, verdict: str, consistent: bool = True) -> dict:
    ba = verdict if consistent else ("B" if verdict == "A" else "A")
    final = verdict if consistent else "tie"
    return {"id": f"{a}-{b}", "verdict": final, "verdicts": {"ab": verdict, "ba": ba},
            # a consistent winner was first in one order; an inconsistent pair: in both
            "consistent": consistent, "first_position_wins": 1 if consistent else 2,
            "verdict_probs": None, "system_a": a, "system_b": b,
            "score": {"A": 1.0, "B": 0.0, "tie": 0.5}[final], "status": "scored"}


def test_pairwise_section_shows_win_tie_loss_consistency_and_leaderboard() -> None:
    records = [_pair("big", "small", "A"), _pair("big", "small", "A"),
               _pair("big", "tiny", "A"), _pair("small", "tiny", "A"),
               _pair("small", "tiny", "A", consistent=False), _pair("tiny", "big", "B")]
    report = job_report(records, {"name": "p", "mode": "pairwise", "scale": [0, 1]}, {})
    section = report["pairwise"]
    text = _printed(report)
    for system in section["wins"]:
        assert (f"│ {system} │ {section['wins'][system]} │ {section['ties'][system]} │ "
                f"{section['losses'][system]} │ {section['win_rate'][system]:.1%} │") in text
    assert f"position consistency {section['consistency_rate']:.1%} (1 inconsistent" in text
    assert f"first position wins {section['first_position_win_rate']:.1%}" in text
    assert [r["system"] for r in section["leaderboard"]][0] == "big"
    top = section["leaderboard"][0]
    assert f"│ 1 │ {top['system']} │ {top['rating']:.3f} │" in text


def test_jury_and_samples_sections() -> None:
    def judged(i: int, a: int, b: int) -> dict:
        return {"id": str(i), "score": (a + b) / 2, "status": "scored", "aggregate": "mean",
                "judges_successful": 2, "human_score": float(a),
                "judges": [{"judge": "j1", "model": "m", "rubric": "r", "status": "scored",
                            "score": a}, {"judge": "j2", "model": "m", "rubric": "r",
                                          "status": "scored", "score": b}],
                "samples": [a, a, b], "reducer": "median", "spread": 0.0 if a == b else 0.47}

    records = [judged(i, a, b) for i, (a, b) in enumerate([(1, 1), (2, 3), (3, 3), (4, 5),
                                                            (5, 5), (2, 2)])]
    report = job_report(records, {"name": "r", "scale": [1, 2, 3, 4, 5]}, {})
    jury, samples = report["jury"], report["samples"]
    text = _printed(report)
    assert f"jury (mean): inter-judge Krippendorff's alpha {jury['alpha']:.3f}" in text
    j2 = jury["per_judge"]["j2"]
    assert (f"│ j2 │ {j2['scored']} │ {j2['unscored']} │ {j2['errors']} │ "
            f"{j2['mean_score']:.3f} │ {j2['agreement']['qwk']:.3f} │") in text
    assert (f"samples: {samples['k']} per item (median), mean per-item spread "
            f"{samples['mean_spread']:.3f}, all samples agree on "
            f"{samples['agreeing_share']:.1%}") in text
    assert "agreement with human grades (6 items)" in text


def test_an_empty_or_failed_report_prints_what_happened() -> None:
    assert _printed({}) == ""
    assert _printed({"error": "the report could not be computed: boom"}) == (
        "report: the report could not be computed: boom")
    assert "agreement of score: the judge rating 9" in _printed(
        {"agreement": {"score": {"error": "the judge rating 9 of item '0' is outside"}}})
