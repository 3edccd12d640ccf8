"""`evalserve.generation.bench`: prompt/answer sets, runs, token counts and ROUGE-L scores
(the command around it: tests/cli/test_bench.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from evalserve.errors import InvalidInputError
from evalserve.generation.bench import (
    GRADER_THRESHOLD,
    QAItem,
    RunResult,
    estimate_tokens,
    read_qa,
    run_engine,
    run_prompts,
    score,
    summarize,
    token_counter,
)
from evalserve.generation.predict import PredictOptions
from evalserve.metrics.rouge import rouge_l
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine, request_text

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("", "holds no prompt/answer lines"), ("{bad", ":1 is not valid JSON"),
     ('{"prompt": "q"}\n', 'item 1 needs string fields "prompt" and "answer"'),
     ('{"prompt": "q", "answer": 3}\n', 'item 1 needs string fields "prompt" and "answer"')],
)
def test_bad_data_files_say_what_is_wrong(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=fragment):
        read_qa(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="qa.jsonl' not found"):
        read_qa(tmp_path / "qa.jsonl")


def test_blank_lines_are_skipped_and_limit_keeps_the_first(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    rows = [{"prompt": f"q{i}", "answer": f"a{i}"} for i in range(3)]
    path.write_text("\n\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert read_qa(path) == [QAItem(f"q{i}", f"a{i}") for i in range(3)]
    assert read_qa(path, limit=2) == [QAItem("q0", "a0"), QAItem("q1", "a1")]
    # only the items used must be complete
    path.write_text(json.dumps(rows[0]) + '\n{"prompt": "no answer"}\n', encoding="utf-8")
    assert read_qa(path, limit=1) == [QAItem("q0", "a0")]


def test_the_example_sets_are_readable() -> None:
    zh, en = read_qa(EXAMPLES / "qa_zh.jsonl"), read_qa(EXAMPLES / "qa_en.jsonl")
    assert len(zh) >= 30 and len(en) >= 30
    assert any(c.isascii() and c.isalnum() for item in zh for c in item.answer)


def test_estimate_counts_cjk_characters_and_word_pieces() -> None:
    assert estimate_tokens("北京") == 2
    assert estimate_tokens("hello world") == 4  # ceil(5/4) * 2
    assert estimate_tokens("北京 is big") == 2 + 1 + 1
    assert estimate_tokens("") == 0


def test_token_counter_estimate_and_a_tokenizer_folder(settings: Settings,
                                                       tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    count, name = token_counter(settings, "estimate")
    assert count is estimate_tokens and name.startswith("estimate")
    folder = tmp_path / "tok"
    folder.mkdir()
    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "hello": 1, "world": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(folder / "tokenizer.json"))
    count, name = token_counter(settings, str(folder))
    assert (count("hello world again"), name) == (3, "tokenizer of tok")


async def test_run_prompts_bounds_concurrency_and_keeps_order() -> None:
    in_flight = peak = 0

    async def one(prompt: str) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01 * (3 - int(prompt)))
        in_flight -= 1
        return f"a{prompt}"

    run = await run_prompts(["0", "1", "2", "3"], one=one, concurrency=2)
    assert (run.answers, run.requests, peak) == (["a0", "a1", "a2", "a3"], 4, 2)
    assert run.wall_s > 0

    async def batch(prompts: list[str]) -> list[str]:
        return [p * 2 for p in prompts]

    run = await run_prompts(["x", "y"], one=one, batch=batch)
    assert (run.answers, run.requests) == (["xx", "yy"], 1)


async def test_run_engine_answers_through_the_predict_library() -> None:
    engine = ScriptedEngine(lambda r: f"  answer to {request_text(r)}<|im_end|>junk",
                            delay=0.01)
    options = PredictOptions()
    run = await run_engine(engine, ["q1", "q2", "q3"], options, batch=True, concurrency=1)
    assert run.answers == ["answer to q1", "answer to q2", "answer to q3"]  # post-processed
    assert (run.requests, engine.max_in_flight) == (1, 3)
    engine = ScriptedEngine(lambda r: "ok", delay=0.01)
    run = await run_engine(engine, ["q1", "q2", "q3"], options, batch=False, concurrency=2)
    assert (run.answers, run.requests, engine.max_in_flight) == (["ok"] * 3, 3, 2)


def test_score_and_summary_use_both_rouge_recipes() -> None:
    items = [QAItem("q1", "中国的首都是北京。"), QAItem("q2", "The capital of France is Paris.")]
    answers = ["北京是中国的首都。", "Paris is the capital of France."]
    standard, grader = score(items, answers, "auto")
    refs = [i.answer for i in items]
    assert standard == [s.f1 for s in rouge_l(answers, refs, lang="auto").scores]
    assert grader == [s.f1 for s in rouge_l(answers, refs, recipe="grader").scores]
    assert grader[0] == 0.0 < standard[0]  # the organisers' recipe ignores Chinese characters
    run = RunResult(answers, wall_s=2.0, requests=1)
    summary = summarize(run, [4, 6], standard, grader, mode="batch", counter="c", lang="auto")
    assert (summary["items"], summary["output_tokens"], summary["tokens_per_s"]) == (2, 10, 5.0)
    assert summary["answers_per_s"] == 1.0 and summary["requests_per_s"] == 0.5
    assert summary["rouge_l"]["mean"] == pytest.approx(sum(standard) / 2)
    assert sum(summary["rouge_l_grader"]["histogram"].values()) == 2
    assert summary["rouge_l_grader"]["threshold"] == GRADER_THRESHOLD
    assert summary["rouge_l_grader"]["passes"] == (sum(grader) / 2 >= GRADER_THRESHOLD)
