"""Bad input to the env, table-driven: ``gymnasium.make`` keyword arguments and actions.

Each case names the error type and a fragment of its message that names the field and the bad
value (issue #15). tests/env/test_config.py holds the older argument cases.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from gelato_env.env import GelatoEnv
from gelato_env.registration import ENV_ID
from gelato_env.traces.store import TraceError

ROOT = Path(__file__).resolve().parents[2]
NAN = float("nan")


@pytest.fixture
def rate_csv(tmp_path: Path) -> str:
    path = tmp_path / "bw.csv"
    path.write_text("timestamp_s,rate_bps\n0.0,1.0e6\n0.1,2.0e6\n")
    return str(path)


# -- make kwargs ---------------------------------------------------------------------------------

MAKE_KWARGS_CASES = [
    # (id, kwargs, error, message fragment)
    ("trace_channel_no_path", {"channel": "trace"}, ValueError,
     "channel 'trace' needs the parameter 'path'"),
    ("trace_channel_path_none", {"channel": "trace", "channel_params": {"path": None}},
     TypeError, "path must be a CSV file path (str or os.PathLike), got None"),
    ("trace_channel_path_int", {"channel": "trace", "channel_params": {"path": 5}},
     TypeError, "path must be a CSV file path (str or os.PathLike), got 5"),
    ("trace_channel_missing_file",
     {"channel": "trace", "channel_params": {"path": "/nonexistent/bw.csv"}},
     FileNotFoundError, "/nonexistent/bw.csv"),
    ("trace_path_int", {"trace_path": 123}, TypeError,
     "trace_path must be a path (str or os.PathLike) or None, got int"),
    ("trace_path_missing", {"trace_path": "/nonexistent/trace"}, TraceError,
     "/nonexistent/trace/header.json: trace header not found"),
    ("threshold_levels_scalar", {"threshold_levels_nats": 1.0}, TypeError,
     "threshold_levels_nats must be a sequence of numbers (nats), got 1.0"),
    ("threshold_levels_string", {"threshold_levels_nats": "12"}, TypeError,
     "threshold_levels_nats must be a sequence of numbers (nats), got '12'"),
    ("threshold_levels_negative", {"threshold_levels_nats": (1.0, -0.5)}, ValueError,
     "threshold_levels_nats[1] must be a finite number >= 0.0, got -0.5"),
    ("threshold_levels_nan", {"threshold_levels_nats": (NAN, 1.0)}, ValueError,
     "threshold_levels_nats[0] must be a finite number >= 0.0, got nan"),
    ("misspelled_kwarg", {"budget_vale": 0.1}, TypeError, "budget_vale"),
    ("max_new_tokens_str", {"max_new_tokens": "8"}, TypeError, "max_new_tokens must be an int"),
    ("horizon_negative", {"horizon": -3}, ValueError, "horizon must be >= 1, got -3"),
    ("v_nan", {"v": NAN}, ValueError, "v must be a finite number >= 0.0, got nan"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [case[1:] for case in MAKE_KWARGS_CASES],
    ids=[case[0] for case in MAKE_KWARGS_CASES],
)
def test_make_kwargs(trace_path: str, kwargs: dict[str, Any], error: type, fragment: str) -> None:
    with pytest.raises(error, match=re.escape(fragment)):
        gym.make(ENV_ID, **{"trace_path": trace_path, **kwargs})


def test_trace_channel_with_a_path_builds(trace_path: str, rate_csv: str) -> None:
    env = GelatoEnv(trace_path=trace_path, channel="trace", channel_params={"path": rate_csv})
    _, info = env.reset(seed=0)
    assert info["rate_bps"] == 1.0e6


# -- actions -------------------------------------------------------------------------------------

BUDGET = "an integer budget in [0, 8]"
PAIR = "a pair [budget, level] of integers, budget in [0, 8] and level in [0, 4]"
PER_TOKEN = "0 (offload now) or 1 (draft one more)"

ACTION_CASES = [
    # (id, action_mode, action, fragment)
    ("budget_nan", "budget", NAN, f"action must be {BUDGET}"),
    ("budget_np_nan", "budget", np.float64(NAN), "got np.float64(nan)"),
    ("budget_inf", "budget", float("inf"), "got inf"),
    ("budget_fraction", "budget", 2.5, "got 2.5"),
    ("budget_too_large", "budget", 9, "(action_mode 'budget': Discrete(9)), got 9"),
    ("budget_negative", "budget", -1, "got -1"),
    ("budget_shape_2", "budget", np.array([2, 3]), "got array([2, 3]) of shape (2,)"),
    ("budget_shape_1", "budget", np.array([2]), "got array([2]) of shape (1,)"),
    ("budget_string", "budget", "3", "got '3'"),
    ("budget_none", "budget", None, "got None"),
    ("threshold_scalar", "budget_threshold", 3, f"action must be {PAIR}"),
    ("threshold_three", "budget_threshold", [1, 2, 3], "got [1, 2, 3]"),
    ("threshold_fraction", "budget_threshold", [2.7, 1.2], "got [2.7, 1.2]"),
    ("threshold_np_fraction", "budget_threshold", np.array([2.7, 1.2]),
     "got array([2.7, 1.2]) of shape (2,)"),
    ("threshold_nan_budget", "budget_threshold", [NAN, 1], "got [nan, 1]"),
    ("threshold_nan_level", "budget_threshold", np.array([1.0, NAN]), "got array([ 1., nan])"),
    ("threshold_budget_too_large", "budget_threshold", np.array([9, 0]), "got array([9, 0])"),
    ("threshold_level_too_large", "budget_threshold", (0, 5),
     "(action_mode 'budget_threshold': MultiDiscrete([9 5])), got (0, 5)"),
    ("threshold_column", "budget_threshold", np.array([[1], [2]]), "of shape (2, 1)"),
    ("per_token_nan", "per_token", NAN, f"action must be {PER_TOKEN}"),
    ("per_token_two", "per_token", 2, "(action_mode 'per_token': Discrete(2)), got 2"),
    ("per_token_half", "per_token", 0.5, "got 0.5"),
    ("per_token_array", "per_token", np.array([1, 0]), "got array([1, 0]) of shape (2,)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("action_mode", "action", "fragment"),
    [case[1:] for case in ACTION_CASES],
    ids=[case[0] for case in ACTION_CASES],
)
def test_actions(trace_path: str, action_mode: str, action: Any, fragment: str) -> None:
    env = GelatoEnv(trace_path=trace_path, action_mode=action_mode)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=re.escape(fragment)):
        env.step(action)


@pytest.mark.parametrize(
    ("action_mode", "action", "budget"),
    [
        ("budget", 3, 3),
        ("budget", np.int64(8), 8),
        ("budget", 2.0, 2),  # integral floats are the integer they equal
        ("budget", np.array(4), 4),  # 0-d arrays are scalars
        ("budget_threshold", np.array([5, 4]), 5),
        ("budget_threshold", [0, 0], 0),
        ("budget_threshold", (2.0, 1.0), 2),
        ("per_token", np.array(0), 0),
    ],
)
def test_valid_actions_still_play(
    trace_path: str, action_mode: str, action: Any, budget: int
) -> None:
    env = GelatoEnv(trace_path=trace_path, action_mode=action_mode)
    env.reset(seed=0)
    info = env.step(action)[4]
    assert info["round_complete"]
    assert info["budget"] == budget


def test_step_after_the_episode_ended_raises(trace_path: str) -> None:
    env = GelatoEnv(trace_path=trace_path)
    with pytest.raises(RuntimeError, match=re.escape("call reset() before step()")):
        env.step(0)


def test_action_checks_survive_python_optimize(trace_path: str) -> None:
    """Under ``python -O`` (asserts stripped) a bad action still raises, and 2.5 is not 2."""
    code = (
        "import numpy as np\n"
        "from gelato_env.env import GelatoEnv\n"
        "for mode, action in (('budget', 2.5), ('budget_threshold', [2.7, 1.2]),"
        " ('per_token', float('nan'))):\n"
        f"    env = GelatoEnv(trace_path={trace_path!r}, action_mode=mode)\n"
        "    env.reset(seed=0)\n"
        "    try:\n"
        "        env.step(action)\n"
        "    except ValueError as err:\n"
        "        print('refused', mode, err)\n"
        "    else:\n"
        "        print('played', mode)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-O", "-c", code], capture_output=True, text=True, env=env,
        timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "played" not in proc.stdout
    assert proc.stdout.count("refused") == 3


VECTOR_BAD_ACTIONS = [
    (np.array([2.5, 1.0]), "must be integers"),
    (np.array([np.nan, 1.0]), "must be integers"),
    (np.array([1, 2, 3]), "must have shape"),
    (np.array([9, 1]), r"budgets must be in Discrete\(9\)"),
    (np.array([-1, 1]), r"budgets must be in Discrete\(9\)"),
    (np.array(["a", "b"]), "must be integers"),
]


@pytest.mark.parametrize(("actions", "match"), VECTOR_BAD_ACTIONS)
def test_vector_env_refuses_bad_actions(micro_trace, actions, match):  # type: ignore[no-untyped-def]
    """The vector env checks actions without asserts (they would vanish under python -O)."""
    from gelato_env.vector import GelatoVectorEnv

    venv = GelatoVectorEnv(2, trace_path=str(micro_trace.path))
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        venv.step(actions)
