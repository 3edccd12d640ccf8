"""Next-token choice: greedy is argmax, penalties reshape the logits, top-p and temperature
shape sampling, a seed reproduces it, and log-probabilities are those after the penalties."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from evalserve.engines.transformers.sampling import sample_next_tokens
from evalserve.engines.transformers.sequence import Sequence
from tests.engines.transformers.tiny import decode, sequence


def seq(prompt_ids: list[int] | None = None, output_ids: list[int] | None = None,
        seed: int | None = None, **request: Any) -> Sequence:
    s, _ = sequence(prompt_ids or [0], max_tokens=8, **request)
    s.output_ids = list(output_ids or [])
    if seed is not None:
        s.generator = torch.Generator().manual_seed(seed)
    return s


def text(token: int) -> str:
    return decode([token])


def choose(logits: list[list[float]], *seqs: Sequence) -> list[tuple[int, Any]]:
    return sample_next_tokens(torch.tensor(logits), seqs, None, text)


def test_greedy_is_the_argmax_of_each_row() -> None:
    torch.manual_seed(0)
    logits = torch.randn(5, 40)
    chosen = sample_next_tokens(logits.clone(), [seq() for _ in range(5)], None, text)
    assert [token for token, _ in chosen] == logits.argmax(dim=-1).tolist()
    assert all(entry is None for _, entry in chosen)  # no logprobs were asked for


def test_logprobs_of_the_chosen_token_and_its_top_alternatives() -> None:
    logits = torch.tensor([[0.5, 3.0, 1.0, 2.0, -1.0]])
    ((token, entry),) = sample_next_tokens(logits.clone(), [seq(logprobs=3)], None, text)
    expected = torch.log_softmax(logits[0], dim=-1)
    assert token == 1 and entry.token == text(1)
    assert entry.logprob == pytest.approx(float(expected[1]))
    assert [t for t, _ in entry.top] == [text(1), text(3), text(2)]
    assert [v for _, v in entry.top] == pytest.approx([float(expected[i]) for i in (1, 3, 2)])
    ((_, bare),) = choose([[0.5, 3.0, 1.0]], seq(logprobs=0))
    assert bare.top == [] and bare.logprob == pytest.approx(
        float(torch.log_softmax(torch.tensor([0.5, 3.0, 1.0]), -1)[1]))


def test_only_rows_that_ask_get_logprobs() -> None:
    chosen = choose([[0.0, 1.0], [1.0, 0.0]], seq(logprobs=1), seq())
    assert chosen[0][1] is not None and chosen[1][1] is None
    assert [t for t, _ in chosen] == [1, 0]


def test_repetition_penalty_divides_positive_and_multiplies_negative_seen_logits() -> None:
    logits = [[2.0, 1.5, -1.0, 0.0]]
    # token 0 was seen in the prompt: 2.0 / 2 = 1.0 < 1.5, so token 1 wins
    ((token, entry),) = choose(logits, seq(prompt_ids=[0, 2], repetition_penalty=2.0,
                                           logprobs=4))
    assert token == 1
    expected = torch.log_softmax(torch.tensor([1.0, 1.5, -2.0, 0.0]), -1)
    assert dict(entry.top) == pytest.approx({text(i): float(v) for i, v in enumerate(expected)})
    # tokens the sequence itself produced count as seen too
    ((again, _),) = choose(logits, seq(output_ids=[0], repetition_penalty=2.0))
    assert again == 1
    ((unpenalised, _),) = choose(logits, seq(prompt_ids=[0]))
    assert unpenalised == 0


def test_presence_and_frequency_penalties_count_the_generated_tokens() -> None:
    logits = [[3.0, 2.9, 1.0, 0.0]]
    s = seq(prompt_ids=[1], output_ids=[0, 0, 2], presence_penalty=0.5, frequency_penalty=1.0,
            logprobs=4)
    ((token, entry),) = choose(logits, s)
    # token 0: 3.0 - (2 x 1.0 + 0.5) = 0.5; token 2: 1.0 - 1.5 = -0.5; the prompt's token 1 is
    # not penalised
    assert token == 1
    expected = torch.log_softmax(torch.tensor([0.5, 2.9, -0.5, 0.0]), -1)
    assert dict(entry.top) == pytest.approx({text(i): float(v) for i, v in enumerate(expected)})


def draws(logits: list[float], n: int = 200, **request: Any) -> list[int]:
    """The token sampled for `logits` under seeds 0..n-1."""
    return [choose([logits], seq(seed=s, **request))[0][0] for s in range(n)]


PROBS = [0.6, 0.3, 0.1]
LOGITS = [float(v) for v in torch.tensor(PROBS).log()]


def test_top_p_samples_only_from_the_smallest_set_reaching_p() -> None:
    assert set(draws(LOGITS, temperature=1.0, top_p=0.5)) == {0}
    assert set(draws(LOGITS, temperature=1.0, top_p=0.8)) == {0, 1}
    assert set(draws(LOGITS, temperature=1.0, top_p=1.0)) == {0, 1, 2}


def test_sampling_follows_the_distribution_and_temperature_sharpens_it() -> None:
    plain = draws(LOGITS, n=400, temperature=1.0)
    assert 0.5 < plain.count(0) / 400 < 0.7
    cold = draws(LOGITS, n=400, temperature=0.2)
    assert cold.count(0) / 400 > 0.9


def test_a_seed_reproduces_the_samples_and_another_seed_differs() -> None:
    torch.manual_seed(1)
    logits = torch.randn(1, 50).tolist()

    def run(seed: int) -> list[int]:
        s = seq(seed=seed, temperature=1.0)
        return [choose(logits, s)[0][0] for _ in range(12)]  # one generator, 12 steps

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_a_tiny_repetition_penalty_keeps_the_logits_finite() -> None:
    """Defect: `"repetition_penalty": 1e-300` is 0 in float32: the seen positive logits were
    divided by zero (inf, then NaN under softmax) and torch.multinomial raised on the decode
    thread. The penalty is applied in float64 and clamped to float32's range."""
    logits = torch.tensor([[2.0, 1.5, -1.0, 0.0]])
    chosen = sample_next_tokens(
        logits, [seq(prompt_ids=[0, 2], repetition_penalty=1e-300, temperature=0.7, seed=1,
                     logprobs=4)], None, text)
    ((token, entry),) = chosen
    assert torch.isfinite(logits).all()  # modified in place: the seen ones are huge, finite
    assert logits[0, 0] == torch.finfo(torch.float32).max and logits[0, 2] <= 0
    assert token == 0  # 2.0 / 1e-300 dominates
    assert entry.logprob == 0.0 and all(v <= 0 for _, v in entry.top)


def test_a_tiny_temperature_over_large_logits_samples_the_best_token() -> None:
    """Defect: logits / temperature overflowed to inf for a small temperature; the row is
    shifted by its maximum first, so the best token gets probability 1."""
    big = [[3e38, 1e38, -3e38]]
    assert set(draws(big[0], n=20, temperature=0.01)) == {0}


def test_a_failing_row_is_its_own_result_and_the_others_are_chosen() -> None:
    bad = seq(temperature=1.0, seed=0)
    bad.request.temperature = float("nan")  # got past validation
    logits = [[0.0, 5.0, 1.0], [4.0, 0.0, 1.0], [0.0, 1.0, 6.0]]
    chosen = choose(logits, seq(), bad, seq(logprobs=1))
    assert chosen[0] == (1, None)
    assert isinstance(chosen[1], RuntimeError) and "nan" in str(chosen[1])
    token, entry = chosen[2]
    assert token == 2 and entry.top[0][0] == text(2)


class MaskAllBut:
    """A grammar allowing only `allowed` tokens (what xgrammar's bitmask does: -inf logits)."""

    def __init__(self, allowed: set[int]) -> None:
        self.allowed = allowed

    def allocate_bitmask(self, rows: int) -> Any:
        return None

    def apply_bitmask(self, logits: Any, bitmask: Any, indices: list[int]) -> None:
        for i in indices:
            for t in range(logits.shape[1]):
                if t not in self.allowed:
                    logits[i, t] = float("-inf")


class Matcher:
    def fill_next_token_bitmask(self, bitmask: Any, row: int) -> None:
        pass


def test_masked_tokens_are_never_top_alternatives() -> None:
    """Defect: under a constraint, tokens the grammar masks have logprob -inf; with fewer
    allowed tokens than `logprobs` asked for, they were returned as alternatives and the
    response carried `-Infinity` (not JSON)."""
    s = seq(logprobs=5)
    s.matcher = Matcher()
    ((token, entry),) = sample_next_tokens(torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]), [s],
                                           MaskAllBut({1, 3}), text)  # type: ignore[arg-type]
    assert token == 3
    assert [t for t, _ in entry.top] == [text(3), text(1)]
    assert all(v > float("-inf") for _, v in entry.top)
    assert entry.logprob == pytest.approx(float(torch.log_softmax(torch.tensor([1.0, 3.0]), 0)[1]))
