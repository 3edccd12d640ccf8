"""The job report in the terminal: the sections of `evalserve.judge.report.job_report`.

`evalserve evaluate` prints it after the score distribution: agreement with human grades
(when items carry them), pairwise win/tie/loss, position consistency and the leaderboard, the
jury's inter-judge agreement and each judge's, and the samples' self-consistency (each judge's,
when a jury samples). It renders
the report as given (the job's own, from its `complete` event, or `job_report` of its
records): it computes nothing, so the numbers are the API's and the MLflow run's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["print_report"]

#: How many of the largest judge/human differences the summary lists.
TOP_DISAGREEMENTS = 5
_FEEDBACK_CHARS = 60


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) and not isinstance(value, bool) \
        else "-"


def _ci(value: Any, ci: Any) -> str:
    text = _fmt(value)
    if isinstance(ci, Sequence) and len(ci) == 2 and all(isinstance(c, int | float) for c in ci):
        text += f"  [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def _agreement_rows(level: str) -> list[tuple[str, Any]]:
    return [
        ("pairs (judge and human)", lambda r: _fmt(r.get("n"))),
        ("missing human grade", lambda r: _fmt(r.get("missing_human"))),
        (f"QWK  [{level} CI]", lambda r: _ci(r.get("qwk"), r.get("qwk_ci"))),
        ("Cohen's kappa", lambda r: _fmt(r.get("kappa"))),
        ("Cohen's kappa, linear", lambda r: _fmt(r.get("kappa_linear"))),
        ("Krippendorff's alpha (ordinal)", lambda r: _fmt(r.get("krippendorff_alpha"))),
        (f"Spearman rho  [{level} CI]", lambda r: _ci(r.get("spearman"), r.get("spearman_ci"))),
        ("Pearson r", lambda r: _fmt(r.get("pearson"))),
        ("exact agreement", lambda r: _pct(r.get("exact"))),
        ("adjacent agreement (±1)", lambda r: _pct(r.get("adjacent"))),
        ("MAE", lambda r: _fmt(r.get("mae"))),
        ("bias (judge - human)", lambda r: _fmt(r.get("bias"))),
    ]


def _agreement(console: Console, section: Mapping[str, Any], score_field: str) -> None:
    results = {(score_field if key == "score" else key): value
               for key, value in section.items() if isinstance(value, Mapping)}
    for name, result in list(results.items()):
        if "error" in result:
            console.print(f"agreement of {name}: {result['error']}")
            del results[name]
    if not results:
        return
    first = next(iter(results.values()))
    confidence = first.get("confidence")
    level = f"{confidence:.0%}" if isinstance(confidence, float) else "95%"
    table = Table(title=f"agreement with human grades ({first.get('items', '?')} items)")
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    for label, cell in _agreement_rows(level):
        table.add_row(label, *(cell(r) for r in results.values()))
    console.print(table)
    _disagreements(console, next(iter(results.items())))


def _disagreements(console: Console, named: tuple[str, Mapping[str, Any]]) -> None:
    name, result = named
    rows = [d for d in result.get("disagreements") or [] if d.get("difference")]
    if not rows:
        return
    table = Table(title=f"largest disagreements ({name} vs human)")
    for column in ("item", "judge", "human", "difference", "feedback"):
        table.add_column(column, justify="left" if column in ("item", "feedback") else "right")
    for row in rows[:TOP_DISAGREEMENTS]:
        feedback = str(row.get("feedback") or "")
        if len(feedback) > _FEEDBACK_CHARS:
            feedback = feedback[:_FEEDBACK_CHARS - 1] + "…"
        table.add_row(str(row.get("id")), _fmt(row.get("judge"), 2), _fmt(row.get("human"), 2),
                      f"{row['difference']:+.2f}", feedback)
    console.print(table)


def _pairwise(console: Console, section: Mapping[str, Any]) -> None:
    wins, ties, losses = (section.get(k) or {} for k in ("wins", "ties", "losses"))
    rates = section.get("win_rate") or {}
    table = Table(title=f"pairwise: {section.get('pairs', 0)} pairs, both orders judged")
    for column in ("system", "wins", "ties", "losses", "win rate"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for system in dict.fromkeys([*wins, *ties, *losses]):
        table.add_row(str(system), str(wins.get(system, 0)), str(ties.get(system, 0)),
                      str(losses.get(system, 0)), _pct(rates.get(system)))
    console.print(table)
    console.print(f"position consistency {_pct(section.get('consistency_rate'))} "
                  f"({section.get('inconsistent', 0)} inconsistent, scored as ties); "
                  f"first position wins {_pct(section.get('first_position_win_rate'))} "
                  "of the orders judged")
    board = section.get("leaderboard") or []
    if board:
        table = Table(title="leaderboard (Bradley–Terry)")
        for column in ("rank", "system", "rating", "95% CI"):
            table.add_column(column, justify="left" if column == "system" else "right")
        for row in board:
            table.add_row(str(row.get("rank")), str(row.get("system")), _fmt(row.get("rating")),
                          f"{_fmt(row.get('ci_low'))} – {_fmt(row.get('ci_high'))}")
        console.print(table)


def _jury(console: Console, section: Mapping[str, Any]) -> None:
    table = Table(title=f"jury ({section.get('aggregate')}): inter-judge Krippendorff's alpha "
                        f"{_fmt(section.get('alpha'))}")
    for column in ("judge", "scored", "unscored", "errors", "mean score", "QWK vs human"):
        table.add_column(column, justify="left" if column == "judge" else "right")
    for name, stats in (section.get("per_judge") or {}).items():
        agreement = stats.get("agreement") or {}
        table.add_row(str(name), _fmt(stats.get("scored")), _fmt(stats.get("unscored")),
                      _fmt(stats.get("errors")), _fmt(stats.get("mean_score")),
                      _fmt(agreement.get("qwk")))
    console.print(table)


def _samples(console: Console, section: Mapping[str, Any]) -> None:
    console.print(f"samples: {section.get('k')} per item ({section.get('reducer')}), mean "
                  f"per-item spread {_fmt(section.get('mean_spread'))}, all samples agree on "
                  f"{_pct(section.get('agreeing_share'))} of {section.get('compared', 0)} items"
                  + (f", {section['failed_samples']} failed samples"
                     if section.get("failed_samples") else ""))
    per_judge = section.get("per_judge")
    if not isinstance(per_judge, Mapping) or not per_judge:
        return
    table = Table(title="each judge's self-consistency over its samples")
    for column in ("judge", "mean spread", "samples agree", "items compared",
                   "failed samples"):
        table.add_column(column, justify="left" if column == "judge" else "right")
    for name, stats in per_judge.items():
        table.add_row(str(name), _fmt(stats.get("mean_spread")),
                      _pct(stats.get("agreeing_share")), _fmt(stats.get("compared")),
                      _fmt(stats.get("failed_samples")))
    console.print(table)


def print_report(console: Console, report: Mapping[str, Any] | None, *,
                 score_field: str = "score") -> None:
    """Print the sections `report` has (nothing for an empty report)."""
    if not report:
        return
    if isinstance(report.get("error"), str):
        console.print(f"report: {report['error']}")
    for key, show in (("agreement", lambda s: _agreement(console, s, score_field)),
                      ("pairwise", lambda s: _pairwise(console, s)),
                      ("jury", lambda s: _jury(console, s)),
                      ("samples", lambda s: _samples(console, s))):
        section = report.get(key)
        if isinstance(section, Mapping) and isinstance(section.get("error"), str):
            console.print(f"{key}: {section['error']}")
        elif isinstance(section, Mapping):
            show(section)
