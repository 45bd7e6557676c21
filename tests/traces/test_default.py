"""The shipped default trace: present in the package, loadable, and what its header says."""

from __future__ import annotations

import numpy as np

from gelato_env.traces.default import DEFAULT_RECORD, DEFAULT_TRACE_NAME, default_trace


def test_shipped_default_trace_loads_and_matches_the_recording_settings() -> None:
    trace = default_trace()
    header = trace.header
    assert trace.path.name == DEFAULT_TRACE_NAME
    assert header.draft_id.startswith("Qwen/Qwen2.5-Coder-0.5B-Instruct")
    assert header.target_id.startswith("Qwen/Qwen2.5-Coder-1.5B-Instruct")
    assert header.vocab_size == 151_936
    assert header.greedy
    assert header.gamma_max == DEFAULT_RECORD.gamma_max
    assert header.max_new_tokens == DEFAULT_RECORD.max_new_tokens
    assert header.prompt_set.startswith("humaneval")
    assert all(pid.startswith("HumanEval/") for pid in header.prompt_ids)
    assert header.provenance["target_dtype"] == "float32"
    assert trace.n_prompts >= 16
    lengths = np.diff(trace.prompt_offsets)
    assert int(lengths.sum()) == trace.n_positions
    assert lengths.max() <= header.max_new_tokens


def test_shipped_trace_is_internally_consistent() -> None:
    """Greedy leading match bits follow the target's output (replay's exactness contract)."""
    trace = default_trace()
    for i in range(trace.n_prompts):
        lo, hi = int(trace.prompt_offsets[i]), int(trace.prompt_offsets[i + 1])
        y, d, bits = trace.target_tokens[lo:hi], trace.draft_tokens[lo:hi], trace.accept_prob[lo:hi]
        t = np.arange(hi - lo)
        # first step: the draft's first token is accepted iff it equals y_t
        np.testing.assert_array_equal(bits[:, 0], (d[:, 0] == y[t]).astype(np.float32))
