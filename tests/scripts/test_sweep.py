"""One sweep mechanism: a Hydra multirun (joblib launcher), aggregated by gelato-aggregate."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents import sweep

ROOT = Path(__file__).resolve().parents[2]


def _job(root: Path, name: str, overrides: list[str], rows: list[dict[str, object]]) -> None:
    job = root / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    with (job / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _rows(tps: float) -> list[dict[str, object]]:
    return [
        {"agent": "gelato", "throughput_tps": tps, "throughput_tps_ci95": 0.5,
         "energy_per_token_j": 0.2, "budget_ratio": 0.9, "meets_budget": True},
        {"agent": "dssd", "throughput_tps": tps - 1, "throughput_tps_ci95": 0.4,
         "energy_per_token_j": 0.3, "budget_ratio": 1.4, "meets_budget": False},
    ]  # fmt: skip


def test_aggregate_joins_jobs_with_their_swept_values(tmp_path: Path) -> None:
    for i, budget in enumerate((0.3, 0.57, 1.0)):  # job 10 sorts after job 5 (numeric order)
        _job(tmp_path, str(i * 5), ["+experiment=smoke", f"env.budget_value={budget}"],
             _rows(10.0 + i))  # fmt: skip
    (tmp_path / "multirun.yaml").write_text("{}\n")
    rows, swept = sweep.aggregate(tmp_path)
    assert swept == ["env.budget_value"]  # +experiment=smoke is shared, not swept
    assert [(r["job"], r["env.budget_value"], r["agent"]) for r in rows][:3] == [
        ("0", 0.3, "gelato"), ("0", 0.3, "dssd"), ("5", 0.57, "gelato")]  # fmt: skip
    assert rows[-1]["throughput_tps"] == 11.0
    written = sweep.write_aggregate(tmp_path)
    assert {p.name for p in written} == {"aggregate.csv", "aggregate.md", "aggregate.pdf",
                                         "aggregate.svg", "aggregate.png"}  # fmt: skip
    table = (tmp_path / "aggregate.md").read_text()
    assert "| env.budget_value | agent | throughput_tps |" in table
    assert "| 0.57 | gelato | 11.000 ± 0.500 |" in table
    with (tmp_path / "aggregate.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 6


def test_no_plot_without_a_numeric_swept_value(tmp_path: Path) -> None:
    for i, channel in enumerate(("rayleigh", "gauss_markov")):
        _job(tmp_path, str(i), [f"env.channel={channel}"], _rows(10.0))
    names = {p.name for p in sweep.write_aggregate(tmp_path)}
    assert names == {"aggregate.csv", "aggregate.md"}


def test_not_a_multirun_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        sweep.main([str(tmp_path)])
    assert err.value.code == 2
    assert "no job folder with results.csv" in capsys.readouterr().err


def test_joblib_multirun_then_aggregate(micro_trace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The documented sweep end to end: two parallel evaluate jobs, then gelato-aggregate."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "MPLBACKEND": "Agg"}
    out = tmp_path / "multirun"
    cmd = [sys.executable, str(ROOT / "scripts" / "evaluate.py"), "-m", "hydra/launcher=joblib",
           "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={out}", "+experiment=smoke",
           f"env.trace_path={micro_trace.path}", "env.budget_value=0.2,0.4",
           "agents=[gelato,dssd]", "seeds=[0]", "n_episodes=1", "sweep.enabled=false",
           "check_lossless=false", "wandb.mode=disabled"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel" in proc.stdout + proc.stderr  # the joblib launcher ran the jobs
    rows, swept = sweep.aggregate(out)
    assert swept == ["env.budget_value"]
    assert sorted((r["env.budget_value"], r["agent"]) for r in rows) == [
        (0.2, "dssd"), (0.2, "gelato"), (0.4, "dssd"), (0.4, "gelato")]  # fmt: skip
    agg = subprocess.run([sys.executable, "-m", "agents.sweep", str(out)], capture_output=True,
                         text=True, env=env, timeout=300, check=False)  # fmt: skip
    assert agg.returncode == 0, agg.stderr[-3000:]
    assert (out / "aggregate.png").is_file()
