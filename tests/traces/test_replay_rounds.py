"""RoundTable (traces/rounds.py), the one home of replay round semantics, against its users."""

from __future__ import annotations

import numpy as np
import pytest

from gelato_env.sd.exit_rules import EntropyBucket, NoExit, Survival
from gelato_env.traces import ReplayBackend
from gelato_env.traces.rounds import RoundTable, leading_matches
from gelato_env.traces.store import Trace


@pytest.mark.parametrize("max_new_tokens", [40, 7])
@pytest.mark.parametrize("rule", [NoExit(), EntropyBucket(0.6, 0.4), Survival(1.0, -0.6, 0.5)])
def test_batch_rounds_equal_the_replay_backends_rounds(
    micro_trace: Trace, rng: np.random.Generator, max_new_tokens: int, rule: object
) -> None:
    """Every (position, budget) played by RoundTable.play equals ReplayBackend.run_round."""
    table = RoundTable.from_trace(
        micro_trace,
        gamma_max=8,
        max_new_tokens=max_new_tokens,
        rules=[rule],  # type: ignore[list-item]
    )
    backend = ReplayBackend(micro_trace, max_new_tokens=max_new_tokens)
    n_checked = n_finished = 0
    for prompt in range(micro_trace.n_prompts):
        for budget in range(9):
            backend.reset(prompt, rng)
            while not backend.done:
                row = int(micro_trace.prompt_offsets[prompt]) + backend.n_generated
                want = backend.run_round(budget, rule)  # type: ignore[arg-type]
                got = table.play(np.array([row]), np.array([budget]))
                assert (got.n_drafted[0], got.n_accepted[0], got.n_tokens[0]) == (
                    want.n_drafted,
                    want.n_accepted,
                    want.n_tokens,
                )
                assert bool(got.finished[0]) == want.finished
                n_checked += 1
                n_finished += want.finished
    assert n_finished == 9 * micro_trace.n_prompts
    assert n_checked > 100


def test_eos_ends_the_generation_where_the_recording_ends() -> None:
    """A prompt recorded shorter than max_new_tokens ends at its last recorded token."""
    match = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    table = RoundTable.build(
        accept_prob=match, entropy=None, max_prob=None, prompt_offsets=[0, 3, 5],
        max_new_tokens=10, gamma_max=2, rules=[NoExit()],
    )  # fmt: skip
    out = table.play(np.array([0, 2, 3]), np.array([2, 2, 2]))
    # row 0: 2 matches + bonus = 3 tokens = the whole recorded output of prompt 0
    assert out.n_tokens.tolist() == [3, 1, 1]
    assert out.finished.tolist() == [True, True, False]
    # n_accepted is capped by the tokens emitted (row 2: 2 matches, 1 token left)
    assert out.n_accepted.tolist() == [2, 1, 0]
    assert table.room.tolist() == [3, 2, 1, 2, 1]
    assert table.cap_left.tolist() == [9, 8, 7, 9, 8]


def test_leading_matches_and_custom_rules_have_no_stop_table() -> None:
    assert leading_matches(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])).tolist() == [1, 0]

    class Custom:
        name = "custom"

        def stop_after(self, entropy: np.ndarray, max_prob: np.ndarray) -> int:
            return 1

    table = RoundTable.build(
        accept_prob=np.ones((2, 2)), entropy=np.zeros((2, 2)), max_prob=np.ones((2, 2)),
        prompt_offsets=[0, 2], max_new_tokens=5, gamma_max=2, rules=[Custom()],
    )  # fmt: skip
    assert table.stops is None
    with pytest.raises(ValueError, match="per round"):
        table.n_drafted(np.array([0]), np.array([2]))
