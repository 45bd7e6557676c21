"""Subprocess smoke runs of scripts/evaluate.py on the micro trace (synthetic statistics)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _evaluate(trace: Any, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, str(ROOT / "scripts" / "evaluate.py"), "+experiment=smoke",
           f"env.trace_path={trace.path}", f"hydra.run.dir={out}", *extra]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)


def test_smoke_run_writes_table_plots_and_wandb(micro_trace: Any, tmp_path: Path) -> None:
    proc = _evaluate(micro_trace, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| gelato |" in proc.stdout
    with (tmp_path / "results.csv").open() as f:
        rows = {row["agent"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"gelato", "static_topp", "dssd", "target_only", "device_only"}
    assert float(rows["gelato"]["throughput_tps"]) > 0
    pngs = {p.name for p in (tmp_path / "plots").glob("*.png")}
    assert pngs == {"throughput_vs_budget.png", "bandwidth_sweep.png", "v_tradeoff.png",
                    "timeline_gelato.png", "gain_vs_budget.png",
                    "gain_vs_bandwidth.png"}  # fmt: skip
    assert "gelato vs dssd (the paper's named reference)" in proc.stdout
    assert list((tmp_path / "wandb").glob("offline-run-*"))


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("agents=[nope]", "unknown agent config 'nope'"),
        ("agents=[]", "agents must not be empty"),
        ("n_episodes=0", "n_episodes must be >= 1"),
        ("env.budget_value=0.0", "budget_value must be"),
        ("+agent_overrides.gelato.v=-1.0", "v must be > 0"),
    ],
)
def test_bad_input_fails_clearly(
    micro_trace: Any, tmp_path: Path, override: str, match: str
) -> None:
    proc = _evaluate(micro_trace, tmp_path, override, "sweep.enabled=false", "wandb.mode=disabled")
    assert proc.returncode != 0
    assert match in proc.stderr
