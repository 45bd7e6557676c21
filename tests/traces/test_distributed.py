"""Ray: sharded trace recording equals single-process recording."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is optional: pip install 'gelato-env[ray]'")

from gelato_env.sd.models import ModelPair  # noqa: E402
from gelato_env.traces.distributed import ray_session, record_trace_ray  # noqa: E402
from gelato_env.traces.prompts import PromptTokens  # noqa: E402
from gelato_env.traces.recorder import RecordConfig  # noqa: E402
from gelato_env.traces.store import COLUMNS  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():  # type: ignore[no-untyped-def]
    """A local Ray instance with 2 CPUs (2 workers), shared by this module's tests."""
    with ray_session(num_cpus=2) as session:
        yield session


def test_ray_recording_equals_single_process(
    local_ray, micro_pair, micro_trace, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # the same pair, prompts and config as the single-process micro_trace fixture
    draft, target = micro_pair
    pair = ModelPair(draft, target, None, "micro-gpt2-draft", "micro-gpt2-target", eos_token_id=1)
    header = micro_trace.header
    prompts = [
        PromptTokens(pid, tuple(micro_trace.prompt_ids_of(i).tolist()))
        for i, pid in enumerate(header.prompt_ids)
    ]
    cfg = RecordConfig(
        gamma_max=header.gamma_max,
        max_new_tokens=header.max_new_tokens,
        batch_positions=16,
        num_threads=1,
    )
    trace, stats = record_trace_ray(
        pair, prompts, tmp_path / "ray_trace", cfg, prompt_set="micro", num_workers=2
    )
    assert stats.n_prompts_recorded == micro_trace.n_prompts
    assert stats.n_positions_recorded == micro_trace.n_positions
    assert trace.header.checksum == micro_trace.header.checksum
    for name in COLUMNS:
        np.testing.assert_array_equal(getattr(trace, name), getattr(micro_trace, name))
    # resuming a finished recording records nothing and keeps the checksum
    again, stats = record_trace_ray(pair, prompts, tmp_path / "ray_trace", cfg, prompt_set="micro")
    assert stats.n_prompts_recorded == 0
    assert again.header.checksum == micro_trace.header.checksum
