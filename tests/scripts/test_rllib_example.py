"""scripts/rllib_example.py: RLlib's PPO on the gelato env via register_env (needs ray[rllib])."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MICRO_VOCAB

ROOT = Path(__file__).resolve().parents[2]


def _rllib_missing() -> str | None:
    """Why RLlib cannot be imported here (None: it can)."""
    if importlib.util.find_spec("ray") is None:
        return "ray is not installed"
    try:
        import ray.rllib  # noqa: F401
    except ImportError as err:  # ray without its rllib extra (dm_tree, lz4, pyarrow, ...)
        return f"ray.rllib not importable ({err}); pip install 'ray[rllib]'"
    return None


@pytest.mark.skipif(_rllib_missing() is not None, reason=str(_rllib_missing()))
def test_rllib_example_trains_one_iteration(micro_trace: Any) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "rllib_example.py"),
            "--trace-path",
            str(micro_trace.path),
            "--vocab-size",
            str(MICRO_VOCAB),
            "--horizon",
            "16",
            "--batch",
            "64",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = dict(kv.split("=") for kv in proc.stdout.strip().splitlines()[-1].split())
    assert float(summary["env_steps"]) == 64
    assert float(summary["episode_len_mean"]) == 16  # episodes end at the horizon
    assert float(summary["episode_return_mean"]) > 0
