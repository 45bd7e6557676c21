"""Recording: resume after interruption, append, manifest pinning, internal consistency."""

from __future__ import annotations

import numpy as np
import pytest

from gelato_env.sd.models import ModelPair
from gelato_env.traces import TraceError
from gelato_env.traces import recorder as recorder_module
from gelato_env.traces.prompts import PromptTokens
from gelato_env.traces.recorder import RecordConfig, record_trace
from tests.conftest import MICRO_TRACE_GAMMA_MAX, MICRO_TRACE_NEW_TOKENS, micro_prompts


def _same_setup_as_micro_trace(micro_pair):  # type: ignore[no-untyped-def]
    draft, target = micro_pair
    pair = ModelPair(draft, target, None, "micro-gpt2-draft", "micro-gpt2-target", eos_token_id=1)
    prompts = [PromptTokens(f"micro-{i}", tuple(p)) for i, p in enumerate(micro_prompts(6))]
    cfg = RecordConfig(
        gamma_max=MICRO_TRACE_GAMMA_MAX,
        max_new_tokens=MICRO_TRACE_NEW_TOKENS,
        batch_positions=16,
        num_threads=1,
    )
    return pair, prompts, cfg


def test_resume_after_interruption_and_append_give_identical_trace(
    micro_pair, micro_trace, tmp_path, monkeypatch
):
    pair, prompts, cfg = _same_setup_as_micro_trace(micro_pair)
    real = recorder_module.record_prompt
    calls = {"n": 0}

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(recorder_module, "record_prompt", interrupted)
    with pytest.raises(KeyboardInterrupt):
        record_trace(pair, prompts, tmp_path, cfg, prompt_set="micro", progress=False)
    assert sorted(p.name for p in (tmp_path / "chunks").iterdir()) == ["000000.npz", "000001.npz"]
    assert not (tmp_path / "header.json").exists()
    monkeypatch.setattr(recorder_module, "record_prompt", real)
    # append: finalize a 4-prompt trace, then extend it to all 6
    four, stats4 = record_trace(
        pair, prompts[:4], tmp_path, cfg, prompt_set="micro", progress=False
    )
    assert (four.n_prompts, stats4.n_prompts_recorded) == (4, 2)
    full, stats6 = record_trace(pair, prompts, tmp_path, cfg, prompt_set="micro", progress=False)
    assert stats6.n_prompts_recorded == 2
    assert full.header.checksum == micro_trace.header.checksum
    np.testing.assert_array_equal(full.entropy, micro_trace.entropy)


def test_resume_refuses_a_different_setup(micro_pair, micro_trace, tmp_path):
    pair, prompts, cfg = _same_setup_as_micro_trace(micro_pair)
    record_trace(pair, prompts[:1], tmp_path, cfg, prompt_set="micro", progress=False)
    other = RecordConfig(gamma_max=4, max_new_tokens=MICRO_TRACE_NEW_TOKENS)
    with pytest.raises(TraceError, match=r"recording\.json.*gamma_max: recorded 8 vs now 4"):
        record_trace(pair, prompts, tmp_path, other, prompt_set="micro", progress=False)
    swapped = [prompts[1], prompts[0]]
    with pytest.raises(TraceError, match=r"000000\.npz.*prompt list changed"):
        record_trace(pair, swapped, tmp_path, cfg, prompt_set="micro", progress=False)


def test_trace_is_internally_consistent(micro_trace):
    """Leading match bits agree with the recorded target output (greedy): d_{t,j} == y_{t+j}."""
    y, d, acc = micro_trace.target_tokens, micro_trace.draft_tokens, micro_trace.accept_prob
    g = micro_trace.gamma_max
    assert set(np.unique(acc)) <= {0.0, 1.0}
    for i in range(micro_trace.n_prompts):
        lo, hi = micro_trace.prompt_offsets[i], micro_trace.prompt_offsets[i + 1]
        for t in range(lo, hi):
            for j in range(min(g, hi - t)):
                assert acc[t, j] == float(d[t, j] == y[t + j])
                if not acc[t, j]:
                    break
    # step 1 of position t is the draft's greedy token given y_<t; entropy of a 64-way softmax
    assert np.all((micro_trace.entropy >= 0) & (micro_trace.entropy <= np.log(64) + 1e-5))
    assert np.all((micro_trace.topp_size >= 1) & (micro_trace.topp_size <= 64))


def test_metadata(micro_trace):
    h = micro_trace.header
    assert (h.gamma_max, h.max_new_tokens, h.temperature, h.eos_token_id) == (8, 40, 0.0, 1)
    assert h.prompt_ids == tuple(f"micro-{i}" for i in range(6))
    assert (h.draft_id, h.target_id, h.tokenizer_sha256, h.vocab_size) == (
        "micro-gpt2-draft",
        "micro-gpt2-target",
        "none",
        64,
    )
    assert h.n_positions == micro_trace.entropy.shape[0] == int(micro_trace.lengths.sum())
    assert len(h.checksum) == 64


def test_sampling_trace_records_acceptance_probabilities(micro_pair, tmp_path):
    draft, target = micro_pair
    pair = ModelPair(draft, target, None, "d", "t", eos_token_id=None)
    prompts = [PromptTokens("a", (5, 6, 7, 8))]
    cfg = RecordConfig(gamma_max=3, max_new_tokens=12, temperature=0.8, seed=3, num_threads=1)
    trace, _ = record_trace(pair, prompts, tmp_path / "a", cfg, progress=False)
    again, _ = record_trace(pair, prompts, tmp_path / "b", cfg, progress=False)
    assert trace.header.checksum == again.header.checksum  # seeded
    assert np.all((trace.accept_prob > 0) & (trace.accept_prob <= 1))
    assert not set(np.unique(trace.accept_prob)) <= {0.0, 1.0}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma_max": 0}, "gamma_max must be >= 1, got 0"),
        ({"max_new_tokens": 0}, "max_new_tokens must be >= 1, got 0"),
        ({"temperature": -0.1}, "temperature must be >= 0, got -0.1"),
        ({"p_top": 1.5}, r"p_top must be in \(0, 1\], got 1.5"),
        ({"batch_positions": 0}, "batch_positions must be >= 1, got 0"),
        ({"num_threads": 0}, "num_threads must be >= 1 or None, got 0"),
    ],
)
def test_record_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RecordConfig(**kwargs)


def test_prompt_ids_outside_the_vocabulary_are_refused_before_work(micro_pair, tmp_path):
    from gelato_env.sd.models import pair_from_models

    draft, target = micro_pair
    pair = pair_from_models(draft, target, eos_token_id=1)
    prompts = [PromptTokens("ok", (2, 3, 4)), PromptTokens("too-big", (2, 64, 5))]
    with pytest.raises(ValueError, match=r"prompt 'too-big' has token ids 2\.\.64, outside"):
        record_trace(pair, prompts, tmp_path / "t", RecordConfig(max_new_tokens=4), progress=False)
    assert not (tmp_path / "t" / "chunks").exists() or not any(
        (tmp_path / "t" / "chunks").iterdir()
    )
