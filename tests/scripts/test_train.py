"""Subprocess smoke runs of scripts/train.py on the micro trace (synthetic statistics)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

#: per-algorithm tiny budgets (hyperparameter names differ between algorithms)
TINY = {
    "ppo": ["algo.kwargs.n_steps=32", "algo.kwargs.batch_size=32", "algo.kwargs.n_epochs=2"],
    "a2c": ["algo.kwargs.n_steps=8"],
    "dqn": ["algo.kwargs.learning_starts=32", "algo.kwargs.buffer_size=2000",
            "algo.kwargs.target_update_interval=64"],
}  # fmt: skip


def _cmd(trace: Any, run_dir: Path, algo: str, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / "train.py"), "+experiment=smoke_train",
            f"algo={algo}", *TINY[algo], f"env.trace_path={trace.path}",
            f"hydra.run.dir={run_dir}", *extra]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_SILENT": "true"}  # fmt: skip


def _train(trace: Any, run_dir: Path, algo: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cmd(trace, run_dir, algo, *extra), capture_output=True, text=True,
                          env=_env(), timeout=300, check=False)  # fmt: skip


def _state(run_dir: Path) -> dict[str, Any]:
    states = sorted((run_dir / "checkpoints").glob("state_*_steps.json"),
                    key=lambda p: int(p.name.split("_")[1]))  # fmt: skip
    assert states, f"no checkpoint in {run_dir}"
    return json.loads(states[-1].read_text())


@pytest.mark.parametrize(
    ("algo", "vec_env"), [("ppo", "gelato"), ("dqn", "gelato"), ("a2c", "dummy")]
)
def test_smoke_run_writes_model_metrics_wandb_and_evaluates(
    micro_trace: Any, tmp_path: Path, algo: str, vec_env: str
) -> None:
    proc = _train(micro_trace, tmp_path, algo, f"train.vec_env={vec_env}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"training envs: 2 x {vec_env}" in proc.stdout
    for name in ("model.zip", "vecnormalize.pkl", "agent.json", "metrics.jsonl", "metrics.csv",
                 "results.md", "results.csv", "plots/learned_vs_gelato.png"):  # fmt: skip
        assert (tmp_path / name).is_file(), name
    assert _state(tmp_path)["num_timesteps"] == 256
    assert list((tmp_path / "wandb").glob("offline-run-*"))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*rows)
    assert {"charts/throughput_tps", "energy/energy_per_token_j", "sd/accepted_length",
            "energy/budget_used_frac", "energy/backlog_mean_j"} <= keys  # fmt: skip
    assert "| learned |" in proc.stdout
    assert "| gelato |" in proc.stdout
    assert "dpp_upper_tps" in proc.stdout
    assert "clairvoyant_upper_tps" in proc.stdout

    # the saved agent scores through the evaluation harness like any other agent
    ev = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate.py"), "+experiment=smoke",
         f"env.trace_path={micro_trace.path}", f"hydra.run.dir={tmp_path / 'eval'}",
         "agents=[gelato,learned]", f"+agent_overrides.learned.path={tmp_path}",
         "sweep.enabled=false", "wandb.mode=disabled"],
        capture_output=True, text=True, env=_env(), timeout=300, check=False,
    )  # fmt: skip
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert "| learned |" in ev.stdout


def test_step_limit_interrupt_then_resume_continues_dqn(micro_trace: Any, tmp_path: Path) -> None:
    first = _train(micro_trace, tmp_path, "dqn", "debug.stop_after_timesteps=128",
                   "compare.enabled=false")  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    state = _state(tmp_path)
    assert state["interrupted"]
    assert state["num_timesteps"] == 128
    assert not (tmp_path / "model.zip").exists()
    assert list((tmp_path / "checkpoints").glob("replay_buffer_128_steps.pkl"))

    second = _train(micro_trace, tmp_path, "dqn", "compare.enabled=false")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming from" in second.stdout
    final = _state(tmp_path)
    assert final["num_timesteps"] == 256
    assert not final["interrupted"]
    assert final["segments"] == [[0, 128], [128, 256]]  # continued, not restarted
    assert final["wandb_id"] == state["wandb_id"] != ""
    steps = [json.loads(line)["global_step"]
             for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]  # fmt: skip
    assert steps == sorted(steps)
    assert steps[-1] > 128


def test_sigterm_checkpoints_and_resume_extends(micro_trace: Any, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        _cmd(micro_trace, tmp_path, "ppo", "train.total_timesteps=10000000",
             "compare.enabled=false", "wandb.mode=disabled", "train.vec_env=gelato"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240  # a guard against hanging, not a timing assertion
        while not list((tmp_path / "checkpoints").glob("state_*_steps.json")):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    state = _state(tmp_path)
    assert state["interrupted"]
    stopped_at = state["num_timesteps"]
    assert 64 <= stopped_at < 10_000_000

    resumed = _train(micro_trace, tmp_path, "ppo", f"train.total_timesteps={stopped_at + 128}",
                     "compare.enabled=false", "wandb.mode=disabled",
                     "train.vec_env=gelato")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = _state(tmp_path)
    assert final["num_timesteps"] >= stopped_at + 128
    assert final["segments"][0] == [0, stopped_at]


def test_resume_false_refuses_existing_checkpoint(micro_trace: Any, tmp_path: Path) -> None:
    first = _train(micro_trace, tmp_path, "a2c", "debug.stop_after_timesteps=64",
                   "compare.enabled=false", "wandb.mode=disabled")  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    again = _train(micro_trace, tmp_path, "a2c", "resume=false", "wandb.mode=disabled")
    assert again.returncode != 0
    assert "already holds a checkpoint at 64 steps" in again.stderr


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("algo=sac", "Could not find 'algo/sac'"),
        ("train.n_envs=0", "n_envs must be an int >= 1"),
        ("train.eval_fraction=1.0", "eval_fraction must be in"),
        ("reward.lambda_lr=0.0", "lambda_lr must be a finite number > 0"),
        ("env.action_mode=budget_threshold", "algo dqn needs a Discrete action space"),
        ("train.vec_env=ray", "vec_env must be one of"),
    ],
)
def test_bad_input_fails_clearly(
    micro_trace: Any, tmp_path: Path, override: str, match: str
) -> None:
    proc = _train(micro_trace, tmp_path, "dqn", override, "wandb.mode=disabled")
    assert proc.returncode != 0
    assert match in proc.stderr


@pytest.mark.parametrize(
    ("reward", "vec_env"), [("lagrangian", "gelato"), ("lagrangian", "dummy"), ("dpp", "gelato")]
)
def test_reward_variants_train_and_compare(
    micro_trace: Any, tmp_path: Path, reward: str, vec_env: str
) -> None:
    proc = _train(micro_trace, tmp_path, "a2c", f"reward={reward}", "wandb.mode=disabled",
                  "compare.clairvoyant=false", "env.budget_value=0.05",
                  f"train.vec_env={vec_env}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    multipliers = [
        r["charts/lagrange_multiplier"] for r in rows if "charts/lagrange_multiplier" in r
    ]
    if reward == "lagrangian":  # 0.05 J/round: below any round that drafts
        assert multipliers
        assert multipliers[-1] > 0.0
        assert _state(tmp_path)["multiplier"] == pytest.approx(multipliers[-1])
    else:
        assert not multipliers
    assert json.loads((tmp_path / "agent.json").read_text())["env"]["reward_mode"] == reward
    with (tmp_path / "results.csv").open() as f:
        table = {row["agent"]: row for row in csv.DictReader(f)}
    assert set(table) == {"learned", "gelato", "target_only"}
    assert np.isfinite(float(table["learned"]["throughput_tps"]))
    assert float(table["learned"]["throughput_tps"]) > 0
