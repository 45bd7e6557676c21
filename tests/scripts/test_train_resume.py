"""Resume of scripts/train.py: config keying, finished runs, and kill-and-resume row by row."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from agents.checkpoints import latest_checkpoint
from agents.metrics_log import read_metrics, truncate_metrics
from agents.run_dir import RUN_CONFIG, config_differences
from tests.scripts.test_train import _cmd, _env, _state, _train

#: PPO rollouts of 2 envs x 32 steps = 64 env steps; evaluations every 192 (3 rollouts, not a
#: multiple of the checkpoint interval), checkpoints every 256
KILL_RUN = ["train.total_timesteps=2048", "train.checkpoint_freq=256", "train.eval_freq=192",
            "train.keep_checkpoints=20", "compare.enabled=false", "progress_bar=false",
            "train.vec_env=gelato"]  # fmt: skip
#: differ between two runs of the same config (wall-clock)
TIMING_KEYS = {"charts/SPS", "time/time_elapsed"}


def _steps(rows: list[dict[str, float]]) -> list[float]:
    return [row["global_step"] for row in rows]


def _eval_steps(rows: list[dict[str, float]]) -> list[float]:
    return [row["global_step"] for row in rows if "eval/mean_reward" in row]


def _without_timing(row: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in row.items() if k not in TIMING_KEYS}


def _kill_when_rows_past_checkpoint(cmd: list[str], run_dir: Path) -> tuple[int, int]:
    """SIGKILL the run once a checkpoint >= 256 exists and rows were logged after it.

    Returns (checkpoint step at the kill, rows past it).
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_env())  # fmt: skip
    try:
        deadline = time.monotonic() + 240  # a guard against hanging, not a timing assertion
        while True:
            assert proc.poll() is None, f"finished before the kill: {proc.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            ckpt = latest_checkpoint(run_dir / "checkpoints")
            if ckpt is not None and ckpt.num_timesteps >= 256:
                past = [r for r in read_metrics(run_dir / "metrics.jsonl")
                        if r["global_step"] > ckpt.num_timesteps]  # fmt: skip
                if past:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=60)
                    return ckpt.num_timesteps, len(past)
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigkill_then_resume_matches_an_uninterrupted_run_row_by_row(
    micro_trace: Any, tmp_path: Path
) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    ref = _train(micro_trace, whole, "ppo", *KILL_RUN, "wandb.mode=disabled")
    assert ref.returncode == 0, ref.stderr[-3000:]
    reference = read_metrics(whole / "metrics.jsonl")

    # killed at an arbitrary moment after a checkpoint, with rows logged past it
    cmd = _cmd(micro_trace, killed, "ppo", *KILL_RUN, "wandb.mode=offline")
    at_kill, n_past = _kill_when_rows_past_checkpoint(cmd, killed)
    ckpt = latest_checkpoint(killed / "checkpoints")
    assert ckpt is not None
    resumed_from = ckpt.num_timesteps  # the kill may land after a newer checkpoint was written
    assert resumed_from >= at_kill

    resumed = _train(micro_trace, killed, "ppo", *KILL_RUN, "wandb.mode=offline")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {ckpt.model}" in resumed.stdout
    rows = read_metrics(killed / "metrics.jsonl")
    print(f"\nkill-resume: killed with checkpoint at {at_kill} and {n_past} row(s) past it; "
          f"resumed from {resumed_from}; rows {len(rows)} vs {len(reference)} uninterrupted; "
          f"steps equal: {_steps(rows) == _steps(reference)}; evaluation steps "
          f"{_eval_steps(rows)} vs {_eval_steps(reference)}")  # fmt: skip

    # the same rows at the same steps: nothing duplicated, nothing running backwards
    assert _steps(rows) == _steps(reference)
    assert _steps(rows) == sorted(_steps(rows))
    labelled = [(row["global_step"], "eval/mean_reward" in row) for row in rows]
    assert len(labelled) == len(set(labelled))
    # evaluations on the original schedule (first step at or past each multiple of 192)
    assert _eval_steps(rows) == _eval_steps(reference) == [192.0 * k for k in range(1, 11)]
    # every row has the keys of the uninterrupted run's row (the update's losses included)
    assert [set(r) for r in rows] == [set(r) for r in reference]
    # up to the checkpoint the rows are the uninterrupted run's, value for value
    before = [i for i, r in enumerate(reference) if r["global_step"] <= resumed_from]
    assert before
    assert [_without_timing(rows[i]) for i in before] == [
        _without_timing(reference[i]) for i in before
    ]
    # the CSV holds the same rows
    csv_lines = (killed / "metrics.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(rows)

    state = _state(killed)
    assert state["segments"] == [[0, resumed_from], [resumed_from, 2048]]
    assert state["last_eval_step"] == 1920
    # one W&B run: every start logs to the run id stored with the config
    wandb_id = json.loads((killed / RUN_CONFIG).read_text())["wandb_id"]
    fragments = list((killed / "wandb").glob("offline-run-*"))
    assert len(fragments) == 2
    assert {p.name.rsplit("-", 1)[-1] for p in fragments} == {wandb_id}


@pytest.fixture(scope="module")
def finished_run(micro_trace: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete tiny PPO run (W&B offline, comparison on), copied by each test that edits it."""
    run_dir = tmp_path_factory.mktemp("finished")
    proc = _train(micro_trace, run_dir, "ppo", "compare.n_episodes=1", "compare.clairvoyant=false",
                  "progress_bar=false")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    return out


def test_rerunning_a_finished_run_reports_complete_and_exits_0(
    micro_trace: Any, finished_run: Path, tmp_path: Path
) -> None:
    run_dir = _copy(finished_run, tmp_path)
    before = sorted(p.name for p in (run_dir / "wandb").glob("offline-run-*"))
    again = _train(micro_trace, run_dir, "ppo", "compare.n_episodes=1",
                   "compare.clairvoyant=false", "progress_bar=false")  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "run already complete: 256 steps" in again.stdout
    assert "| learned |" in again.stdout  # its results
    assert sorted(p.name for p in (run_dir / "wandb").glob("offline-run-*")) == before
    assert "AttributeError" not in again.stderr


def test_changed_config_is_refused_naming_each_field(
    micro_trace: Any, finished_run: Path, tmp_path: Path
) -> None:
    run_dir = _copy(finished_run, tmp_path)
    stored = (run_dir / RUN_CONFIG).read_text()
    proc = _train(micro_trace, run_dir, "ppo", "compare.n_episodes=1", "compare.clairvoyant=false",
                  "train.total_timesteps=320", "env.budget_value=0.4",
                  "algo.kwargs.policy_kwargs.net_arch=[256,256]")  # fmt: skip
    assert proc.returncode != 0
    assert "holds a run started with a different config" in proc.stderr
    assert "2 field(s) differ" in proc.stderr
    assert "env.budget_value: 0.2 (stored) -> 0.4 (now)" in proc.stderr
    assert "algo.kwargs.policy_kwargs.net_arch: [16] (stored) -> [256, 256] (now)" in proc.stderr
    assert "  train.total_timesteps:" not in proc.stderr  # extending a run is allowed
    assert (run_dir / RUN_CONFIG).read_text() == stored
    assert not (run_dir / "checkpoints" / "state_320_steps.json").exists()


def test_changed_config_with_new_run_trains_in_a_sibling_dir(
    micro_trace: Any, finished_run: Path, tmp_path: Path
) -> None:
    run_dir = _copy(finished_run, tmp_path)
    extra = ["env.budget_value=0.4", "on_config_change=new_run", "compare.enabled=false",
             "wandb.mode=disabled", "progress_bar=false"]  # fmt: skip
    proc = _train(micro_trace, run_dir, "ppo", *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    siblings = list(tmp_path.glob("run__cfg*"))
    assert len(siblings) == 1
    assert json.loads((siblings[0] / "agent.json").read_text())["env"]["budget_value"] == 0.4
    assert json.loads((run_dir / "agent.json").read_text())["env"]["budget_value"] == 0.2
    again = _train(micro_trace, run_dir, "ppo", *extra)  # the same command: that run, complete
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"run already complete: 256 steps in {siblings[0]}" in again.stdout


def test_extending_total_timesteps_resumes_the_finished_run(
    micro_trace: Any, finished_run: Path, tmp_path: Path
) -> None:
    run_dir = _copy(finished_run, tmp_path)
    proc = _train(micro_trace, run_dir, "ppo", "train.total_timesteps=384", "compare.enabled=false",
                  "wandb.mode=disabled", "progress_bar=false")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _state(run_dir)["segments"] == [[0, 256], [256, 384]]
    steps = _steps(read_metrics(run_dir / "metrics.jsonl"))
    assert steps == sorted(steps)
    assert steps[-1] == 384


def test_held_out_evaluations_log_throughput_next_to_mean_reward(finished_run: Path) -> None:
    rows = [r for r in read_metrics(finished_run / "metrics.jsonl") if "eval/mean_reward" in r]
    assert [r["global_step"] for r in rows] == [128.0, 256.0]  # smoke_train: eval_freq 128
    # sum(tokens) / sum(time) over the held-out episodes: a rate, not a sum of 32 rates
    assert all(0 < r["eval/throughput_tok_s"] < r["eval/mean_reward"] / 4 for r in rows)


def test_config_differences_lists_changed_added_and_removed_fields() -> None:
    stored = {"env": {"budget_value": 0.2, "horizon": 256}, "seed": 0, "resume": "auto"}
    current = {"env": {"budget_value": 0.4}, "seed": 0, "resume": True, "extra": 1}
    assert config_differences(stored, current) == [
        ("env.budget_value", 0.2, 0.4),
        ("env.horizon", 256, "<absent>"),
        ("extra", "<absent>", 1),
    ]


def test_truncate_metrics_drops_rows_past_the_step_and_a_cut_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    rows = [{"global_step": s, "x": s / 2} for s in (64, 128, 128, 192)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"global_step": 25')
    assert truncate_metrics(path, 128) == 2
    assert read_metrics(path) == rows[:3]
    assert truncate_metrics(path, 128) == 0
    assert truncate_metrics(path, -1) == 3
    assert path.read_text() == ""
    assert truncate_metrics(tmp_path / "absent.jsonl", 0) == 0
