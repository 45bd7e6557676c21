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


FIGURES = {"comparison", "timeline_gelato", "throughput_vs_budget", "bandwidth_sweep",
           "v_tradeoff", "gain_vs_budget", "gain_vs_bandwidth"}  # fmt: skip


def test_smoke_run_writes_table_plots_and_wandb(micro_trace: Any, tmp_path: Path) -> None:
    proc = _evaluate(micro_trace, tmp_path, "seeds=[0,1]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Mean ± 95 % CI half-width over 2 evaluation seeds (Student t, 1 dof)" in proc.stdout
    assert "| gelato | " in proc.stdout
    with (tmp_path / "results.csv").open() as f:
        rows = {row["agent"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"gelato", "static_topp", "dssd", "target_only", "device_only"}
    assert float(rows["gelato"]["throughput_tps"]) > 0
    assert float(rows["gelato"]["throughput_tps_ci95"]) >= 0
    with (tmp_path / "results_per_seed.csv").open() as f:
        per_seed = list(csv.DictReader(f))
    assert [(r["seed"], r["agent"]) for r in per_seed[:2]] == [("0", "gelato"),
                                                                ("0", "static_topp")]  # fmt: skip
    assert len(per_seed) == 2 * len(rows)
    files = {p.name for p in (tmp_path / "plots").iterdir()}
    assert files >= {f"{stem}.{fmt}" for stem in FIGURES for fmt in ("pdf", "svg", "png")}
    assert {p.stem for p in (tmp_path / "plots").glob("*.png")} == FIGURES
    assert {"sweep_budget.csv", "sweep_bandwidth.csv", "sweep_v.csv"} <= files
    assert "gelato vs dssd (the paper's named reference)" in proc.stdout
    assert "clairvoyant_upper_tps: " in proc.stdout
    assert list((tmp_path / "wandb").glob("offline-run-*"))
    job_log = (tmp_path / "evaluate.log").read_text()  # Hydra's job log holds the run's output
    assert "| gelato | " in job_log
    assert "gelato vs dssd (the paper's named reference)" in job_log


def test_variants_missing_bounds_and_determinism(micro_trace: Any, tmp_path: Path) -> None:
    # two variants of one preset share the table; no target_only: the clairvoyant bound says
    # why it is missing; the same seeds give the same table
    args = ("agents=[gelato,static_topp,{preset:static_topp,params:{gamma:2}},"
            "{preset:static_topp,params:{gamma:6},label:topp6},dssd]", "seeds=[3,5]",
            "sweep.enabled=false", "wandb.mode=disabled")  # fmt: skip
    first = _evaluate(micro_trace, tmp_path / "a", *args)
    assert first.returncode == 0, first.stderr[-3000:]
    with (tmp_path / "a" / "results.csv").open() as f:
        labels = [row["agent"] for row in csv.DictReader(f)]
    assert labels == ["gelato", "static_topp", "static_topp[gamma=2]", "topp6", "dssd"]
    assert "clairvoyant bound: not computed (needs target_only among the agents" in first.stdout
    assert "dpp_upper_tps: " in first.stdout
    second = _evaluate(micro_trace, tmp_path / "b", *args)
    assert second.returncode == 0, second.stderr[-3000:]
    for name in ("results.csv", "results_per_seed.csv", "results.md"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text(), name


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("agents=[nope]", "unknown agent config 'nope'"),
        ("agents=[]", "agents must not be empty"),
        ("n_episodes=0", "n_episodes must be >= 1"),
        ("seeds=[]", "seeds must be a non-empty list of ints"),
        ("seeds=[1,1]", "seeds must be distinct, got [1, 1]"),
        ("seeds=[-2]", "seeds[i] must be >= 0, got -2"),
        ("agents=[static_topp,{preset:static_topp}]", "entries are labelled ['static_topp']"),
        ("agents=[{preset:static_topp,gamma:3}]", "unknown keys ['gamma']"),
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
