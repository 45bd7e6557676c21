"""scripts/trace_stats.py: the statistics of a trace, checked against independent computations.

Three traces: a hand-made one (3 prompts, every number worked out by hand in the comments), the
micro trace recorded from the synthetic micro pair (numbers recomputed here from its columns in
plain Python), and the shipped default trace (the headline numbers the README quotes).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from gelato_env.traces.fit import fit_alpha_from_trace
from gelato_env.traces.store import Trace, load_trace, write_trace
from gelato_env.traces.summary import summarize
from tests.conftest import load_script


@pytest.fixture(scope="module")
def trace_stats() -> ModuleType:
    return load_script("trace_stats")


#: the hand-made trace: gamma_max 2, max_new_tokens 4, EOS id 1; per prompt its output tokens and
#: the match bits of the two recorded draft steps at each position
HAND = [
    ([5, 6, 7, 8], [[1, 1], [1, 0], [0, 1], [1, 1]]),  # 4 tokens: stopped by the cap
    ([9, 1], [[1, 1], [0, 0]]),  # ends at EOS
    ([4, 4, 1], [[1, 0], [1, 1], [0, 0]]),  # ends at EOS
]


def write_hand_trace(root: Path) -> Trace:
    bits = np.array([row for _, rows in HAND for row in rows], dtype=np.float32)  # (9, 2)
    n = bits.shape[0]
    entropy = np.linspace(0.05, 2.0, 2 * n, dtype=np.float32).reshape(n, 2)
    arrays: dict[str, Any] = {
        "target_tokens": np.array([t for tokens, _ in HAND for t in tokens], dtype=np.int32),
        "draft_tokens": np.full((n, 2), 3, dtype=np.int32),
        "entropy": entropy,
        "max_prob": np.exp(-entropy),
        "topp_size": np.ones((n, 2), dtype=np.int32),
        "accept_prob": bits,
        "prompt_offsets": np.array([0, 4, 6, 9], dtype=np.int64),
        "prompt_tokens": np.arange(2, 8, dtype=np.int32),
        "prompt_token_offsets": np.array([0, 2, 4, 6], dtype=np.int64),
    }
    meta = {
        "code_version": "test", "draft_id": "hand-draft", "target_id": "hand-target",
        "tokenizer_sha256": "none", "vocab_size": 16, "eos_token_id": 1, "temperature": 0.0,
        "gamma_max": 2, "p_top": 0.9, "max_new_tokens": 4, "seed": 0, "prompt_set": "hand",
        "prompt_ids": ["a", "b", "c"],
    }  # fmt: skip
    write_trace(root, meta, arrays)
    return load_trace(root)


def test_hand_trace_numbers_worked_out_by_hand(
    trace_stats: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = write_hand_trace(tmp_path / "hand")
    out = tmp_path / "stats.json"
    assert trace_stats.main(["--trace", str(trace.path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    s = json.loads(out.read_text())
    assert (s["n_prompts"], s["n_positions"]) == (3, 9)
    assert (s["n_ended_by_eos"], s["n_ended_by_cap"]) == (2, 1)
    assert s["output_length_mean"] == 3.0
    assert s["output_length_median"] == 3.0
    assert (s["output_length_min"], s["output_length_max"]) == (2, 4)
    assert s["acceptance"] == pytest.approx(11 / 18)  # 11 match bits of 18
    # gamma 1, by position (cap_left = 4 - t - 1, room = length - t; n = min(match + 1, room)):
    # prompt a: 2 2 1 1 (t = 3: cap_left 0, no draft); b: 2 1; c: 2 2 1 -> 14 tokens in 9 rounds
    # gamma 2: a: 3 2 1 1 (t = 2: cap_left 1); b: 2 (room 2) 1; c: 2 2 (room 2) 1 -> 15
    assert s["tokens_per_round_by_gamma"] == pytest.approx([1.0, 14 / 9, 15 / 9])
    # accepted drafts min(matches, n): gamma 1: a 1 1 0 0, b 1 0, c 1 1 0 -> 5; gamma 2:
    # a 2 1 0 0, b 2 0 (2 matches fill the room: no bonus token), c 1 2 0 -> 8
    assert s["accepted_per_round_by_gamma"] == pytest.approx([0.0, 5 / 9, 8 / 9])
    # uncapped: leading matches a 2 1 0 2, b 2 0, c 1 2 0; among the first 1: 1 1 0 1, 1 0, 1 1 0
    assert s["mean_tokens_by_gamma"] == pytest.approx([1.0, 1 + 6 / 9, 1 + 10 / 9])
    assert s["acceptance_by_step"] == pytest.approx([6 / 9, 5 / 9])
    assert (s["draft_id"], s["target_id"], s["prompt_set"]) == ("hand-draft", "hand-target", "hand")
    assert s["checksum"] == trace.header.checksum
    assert s["column_bytes"] == 9 * 4 + 5 * (9 * 2 * 4) + 4 * 8 + 6 * 4 + 4 * 8
    h = np.linspace(0.05, 2.0, 18, dtype=np.float32).astype(np.float64)
    assert s["entropy_quantiles"] == pytest.approx(np.quantile(h, [0.1, 0.5, 0.9]))
    assert s["first_step_entropy_quantiles"] == pytest.approx(np.quantile(h[0::2], [0.1, 0.5, 0.9]))
    assert s["first_step_entropy_mean"] == pytest.approx(h[0::2].mean())
    assert "prompts                       3 (2 end at EOS, 1 at the max_new_tokens cap)" in printed
    assert "E[N] per round (RoundTable)     1.00  1.56  1.67" in printed
    assert f"summary written to {out}" in printed


def test_micro_trace_matches_independent_computations(
    trace_stats: ModuleType,
    micro_trace: Trace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "micro.json"
    assert trace_stats.main(["--trace", str(micro_trace.path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    s = json.loads(out.read_text())
    header = micro_trace.header
    acc = np.asarray(micro_trace.accept_prob, dtype=np.float64)
    bits = acc.tolist()
    offsets = np.asarray(micro_trace.prompt_offsets).tolist()
    lengths = [b - a for a, b in itertools.pairwise(offsets)]
    outputs = np.asarray(micro_trace.target_tokens).tolist()

    assert s["n_prompts"] == len(lengths) == micro_trace.n_prompts
    assert s["n_positions"] == sum(lengths) == len(bits)
    assert s["acceptance"] == pytest.approx(sum(map(sum, bits)) / (len(bits) * header.gamma_max))
    eos = sum(outputs[end - 1] == header.eos_token_id for end in offsets[1:])
    cap = sum(n >= header.max_new_tokens for n in lengths) - eos
    assert (s["n_ended_by_eos"], s["n_ended_by_cap"]) == (eos, cap)
    assert s["output_length_mean"] == pytest.approx(sum(lengths) / len(lengths))
    assert s["output_length_median"] == pytest.approx(float(np.median(lengths)))
    assert (s["output_length_min"], s["output_length_max"]) == (min(lengths), max(lengths))

    # E[N] at gamma = 1 by hand: a round at position t drafts one token if the cap leaves room
    # for it and the bonus token, emits 1 + its match bit, never past the recorded output's end
    total = 0
    for start, length in zip(offsets, lengths, strict=False):
        for t in range(length):
            drafted = 1 if header.max_new_tokens - t - 1 >= 1 else 0
            match = int(drafted == 1 and bits[start + t][0] >= 0.5)
            total += min(match + 1, length - t)
    assert s["tokens_per_round_by_gamma"][1] == pytest.approx(total / len(bits))
    assert s["tokens_per_round_by_gamma"][0] == 1.0
    assert np.all(np.diff(s["tokens_per_round_by_gamma"]) >= 0)
    assert np.all(np.array(s["tokens_per_round_by_gamma"]) <= s["mean_tokens_by_gamma"])

    fit = fit_alpha_from_trace(micro_trace)
    assert s["alpha_fit"]["a"] == pytest.approx(fit.a)
    assert s["alpha_fit"]["b"] == pytest.approx(fit.b)
    assert s["alpha_fit"]["r2"] == pytest.approx(fit.r2)
    h = np.asarray(micro_trace.entropy, dtype=np.float64)
    assert s["entropy_quantiles"] == pytest.approx(np.quantile(h, [0.1, 0.5, 0.9]))
    assert s["first_step_entropy_quantiles"] == pytest.approx(np.quantile(h[:, 0], [0.1, 0.5, 0.9]))
    assert f"{s['acceptance']:.3f}" in printed
    # the JSON holds the same numbers summarize returns (the script computes none of its own)
    assert s == json.loads(json.dumps(summarize(micro_trace).to_dict()))


@pytest.mark.parametrize("what", ["missing", "not_a_trace", "file"])
def test_bad_trace_path_is_one_line_naming_it(
    trace_stats: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    path = tmp_path / what
    if what == "not_a_trace":
        path.mkdir()
    elif what == "file":
        path.write_text("not a trace")
    out = tmp_path / "stats.json"
    assert trace_stats.main(["--trace", str(path), "--json", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert str(path) in lines[0]
    assert not out.exists()


def test_missing_json_folder_is_refused_before_any_work(
    trace_stats: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nowhere" / "stats.json"
    assert trace_stats.main(["--trace", str(tmp_path / "missing"), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert str(out) in err


def test_shipped_trace_headline_numbers(
    trace_stats: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The numbers README.md quotes for the shipped trace (Models and traces)."""
    out = tmp_path / "shipped.json"
    assert trace_stats.main(["--json", str(out)]) == 0
    printed = capsys.readouterr().out
    s = json.loads(out.read_text())
    assert (s["n_prompts"], s["n_positions"]) == (164, 19432)
    assert (s["n_ended_by_eos"], s["n_ended_by_cap"]) == (43, 121)
    assert round(s["output_length_mean"], 1) == 118.5
    assert round(s["column_bytes"] / 1e6, 1) == 3.3
    assert round(s["acceptance"], 3) == 0.984
    assert round(s["mean_tokens_by_gamma"][4], 2) == 4.85
    assert round(s["tokens_per_round_by_gamma"][4], 2) == 4.78
    fit = s["alpha_fit"]
    assert (round(fit["a"], 3), round(fit["b"], 3), round(fit["r2"], 3)) == (1.005, -0.297, 0.948)
    assert "prompts                       164 (43 end at EOS, 121 at the max_new_tokens cap)" in (
        printed
    )
