"""Agents for device-edge SD under energy budgets (docs/design.md §5).

- :mod:`~agents.base`: the :class:`Policy` protocol (SB3's ``predict``) and the analytic base.
- :mod:`~agents.registry`: :func:`make_agent` by name.
- :mod:`~agents.gelato`: the GELATO controller and the ``marginal_utility`` exit rule;
  :mod:`~agents.calibration`: its calibration on a trace's training prompts.
- :mod:`~agents.baselines`: static SD, DSSD, HF heuristic, early-exit stops, target/device-only.
- :mod:`~agents.forecast`: N^, T^, E^ forecasts over the drafting budget.
- :mod:`~agents.bounds`: the drift-plus-penalty bound and the clairvoyant offline optimum.
- :mod:`~agents.evaluation`: the evaluation harness; :mod:`~agents.results`: the results tables
  (means and 95 % CIs over seeds, gains); :mod:`~agents.plots`.
- Learned agents (stable-baselines3; ``scripts/train.py``): :mod:`~agents.learned` (a trained
  model as a policy), :mod:`~agents.train_config`, :mod:`~agents.prompt_split`,
  :mod:`~agents.train_envs` (gelato's vector env or SB3's VecEnvs; :mod:`~agents.vec_infos`),
  :mod:`~agents.callbacks`, :mod:`~agents.metrics_log`, :mod:`~agents.checkpoints`,
  :mod:`~agents.run_dir`, :mod:`~agents.agent_card`, :mod:`~agents.comparison` (learned vs
  GELATO on held-out prompts).
"""

from agents.base import AnalyticPolicy, Decision, EnvOverrides, Policy
from agents.gelato import GelatoPolicy, MarginalUtility
from agents.registry import AGENTS, make_agent

__all__ = [
    "AGENTS",
    "AnalyticPolicy",
    "Decision",
    "EnvOverrides",
    "GelatoPolicy",
    "MarginalUtility",
    "Policy",
    "make_agent",
]
