"""Subprocess smoke run of scripts/record_traces.py (SYNTHETIC micro pair) and its configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from gelato_env.traces import load_trace

ROOT = Path(__file__).resolve().parents[2]


def test_record_script_smoke_and_resume(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "record_traces.py"),
        "pair.kind=micro_synthetic",
        "prompts.n=2",
        "record.max_new_tokens=6",
        "record.gamma_max=3",
        "record.num_threads=1",
        f"out_dir={tmp_path / 'trace'}",
        "progress=false",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "recorded now: 2 prompts, 12 positions" in first.stdout
    trace = load_trace(tmp_path / "trace", gamma_max=3)
    assert (trace.n_prompts, trace.n_positions) == (2, 12)
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert "recorded now: 0 prompts" in again.stdout  # resumed: nothing re-recorded
    assert load_trace(tmp_path / "trace").header.checksum == trace.header.checksum


def test_configs_compose():
    with initialize_config_dir(config_dir=str(ROOT / "gelato_env" / "conf"), version_base=None):
        for group in ("humaneval", "jsonl", "gsm8k"):
            cfg = compose("record_traces", overrides=[f"prompts={group}"])
            assert cfg.prompts.source == group
            assert cfg.record.gamma_max == 8
