"""A trained stable-baselines3 agent as a :class:`~agents.base.Policy` of the evaluation harness.

``scripts/train.py`` leaves in its run directory the final ``model.zip``, the ``VecNormalize``
statistics ``vecnormalize.pkl`` (when used) and ``agent.json`` (:class:`~agents.training.AgentCard`:
algorithm, training env config, prompt split). :class:`LearnedPolicy` loads them by path, so a
trained agent is scored by the same loop, table and plots as GELATO::

    python scripts/evaluate.py agents=[gelato,static_topp,learned] \
        +agent_overrides.learned.path=runs/<run>

It decides from the observation only (no system model). It shares the analytic agents' harness
hooks: :meth:`env_overrides` asks for the training env's action mode, inner exit rule and payload
protocol, and :meth:`bind` checks the harness env's spaces against the model's.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from agents.base import AnalyticPolicy, EnvOverrides, PolicyState
from agents.training import AGENT_CARD, AgentCard, algorithm_class
from gelato_env.config import EnvConfig

MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.pkl"

#: env settings that may legitimately differ between training and evaluation; a difference in
#: any other field (system, budget, channel, ...) is evaluated but warned about
_EVAL_ONLY_FIELDS = (
    "backend",
    "trace_path",
    "horizon",
    "prompt_order",
    "reward_mode",
    "max_new_tokens",
)


class LearnedPolicy(AnalyticPolicy):
    """A trained SB3 model (PPO, DQN, A2C) loaded from a training run.

    Args:
        path: the run directory, or its ``model.zip`` (``agent.json`` and ``vecnormalize.pkl``
            are read from the same directory). None builds an unloaded policy whose
            :meth:`bind` fails, naming the setting to add (the registry builds every agent
            without parameters).
        deterministic: act greedily (the argmax action) instead of sampling from the policy.

    Raises:
        FileNotFoundError: no model at ``path``.
        ValueError: a corrupt ``agent.json``.
    """

    name: ClassVar[str] = "learned"

    def __init__(self, path: str | Path | None = None, deterministic: bool = True) -> None:
        super().__init__()
        self.path = None if path is None else Path(path).expanduser()
        self.deterministic = bool(deterministic)
        self.model: Any = None
        self.card: AgentCard | None = None
        self._vecnormalize: Any = None
        if self.path is not None:
            self._load(self.path)

    def _load(self, path: Path) -> None:
        directory = path if path.is_dir() else path.parent
        model_path = path if path.is_file() else directory / MODEL_FILE
        if not model_path.is_file():
            raise FileNotFoundError(
                f"no trained model at {path} (expected a run directory with {MODEL_FILE} or a "
                f"model .zip)"
            )
        card_path = directory / AGENT_CARD
        if not card_path.is_file():
            raise FileNotFoundError(f"{card_path}: missing agent card next to {model_path}")
        self.card = AgentCard.load(card_path)
        self.model = algorithm_class(self.card.algo).load(model_path, device="cpu")
        vecnorm = directory / VECNORMALIZE_FILE
        if vecnorm.is_file():
            with vecnorm.open("rb") as f:
                self._vecnormalize = pickle.load(f)  # statistics only; no venv needed

    def env_overrides(self) -> EnvOverrides:
        """The training env's action mode, exit rule and payload protocol."""
        if self.card is None:
            return EnvOverrides()
        env = self.card.env
        return EnvOverrides(
            protocol=env.get("payload"),
            exit_rule=str(env["exit_rule"]),
            exit_rule_params=dict(env.get("exit_params") or {}),
            action_mode=str(env["action_mode"]),
        )

    def bind(self, env: Any) -> LearnedPolicy:
        """Check the env's spaces match the model's; warn about other setting differences.

        Raises:
            ValueError: no model loaded, or the observation/action spaces differ.
        """
        if self.model is None or self.card is None:
            raise ValueError(
                "the learned agent needs a trained run: set path=<run dir or model.zip> "
                "(scripts/evaluate.py: +agent_overrides.learned.path=...)"
            )
        base = env.unwrapped
        for what, have, want in (
            ("observation", base.observation_space, self.model.observation_space),
            ("action", base.action_space, self.model.action_space),
        ):
            if have.shape != want.shape or getattr(have, "n", None) != getattr(want, "n", None):
                raise ValueError(
                    f"learned agent {self.path}: env {what} space {have} differs from the "
                    f"trained model's {want}"
                )
        trained = self.card.env
        current = base.config.to_dict()
        differ = sorted(
            k for k in trained if k not in _EVAL_ONLY_FIELDS and trained[k] != current.get(k)
        )
        if differ:
            warnings.warn(
                f"learned agent {self.path} was trained with different env settings {differ}; "
                f"evaluating out of its training distribution",
                stacklevel=2,
            )
        self.env = base
        self.spec = base.observation_spec
        self.gamma_max = int(self.spec.gamma_max)
        self.action_mode = str(base.config.action_mode)
        return self

    def predict(
        self,
        observation: npt.NDArray[Any],
        state: PolicyState = None,
        episode_start: npt.NDArray[np.bool_] | None = None,
        deterministic: bool = True,
    ) -> tuple[npt.NDArray[Any], PolicyState]:
        """The model's action for a raw env observation, shape ``(obs_dim,)`` or ``(n, obs_dim)``.

        The observation is normalized with the training ``VecNormalize`` statistics first.
        ``deterministic`` is combined with the constructor's: either False samples.
        """
        if self.model is None:
            raise ValueError("the learned agent has no model: build it with path=<run dir>")
        obs = np.asarray(observation, dtype=np.float32)
        if self._vecnormalize is not None:
            obs = self._vecnormalize.normalize_obs(obs)
        action, new_state = self.model.predict(
            obs, state=state, episode_start=episode_start,
            deterministic=self.deterministic and deterministic,
        )  # fmt: skip
        return np.asarray(action), new_state


# ------------------------------------------------------------------------------------------
# learned vs GELATO on the held-out prompts


@dataclass(frozen=True)
class Comparison:
    """The held-out comparison of a trained agent with GELATO, baselines and GELATO's bounds.

    Attributes:
        rows: the results table (``agents.evaluation.results_table``), one row per agent.
        markdown: the table as Markdown, followed by the bounds.
        bounds: ``gelato_tps``, ``dpp_gap_tps`` (B_0 / V), ``dpp_upper_tps`` (R_GELATO + B_0 / V)
            and, when computed, ``clairvoyant_upper_tps``, tokens/s.
        plot: the throughput bar chart with the bounds drawn.
    """

    rows: list[dict[str, Any]]
    markdown: str
    bounds: dict[str, float]
    plot: Path


def compare_with_agents(
    run_dir: Path,
    env_config: EnvConfig,
    prompt_indices: Sequence[int],
    agents: Sequence[tuple[str, str, Mapping[str, Any]]],
    *,
    n_episodes: int,
    seed: int,
    clairvoyant: bool = True,
) -> Comparison:
    """Evaluate the run's trained agent and ``agents`` on the same held-out episodes.

    Every agent runs through :func:`agents.evaluation.run_agent` (episode i seeded ``seed + i``,
    the queue persisting across episodes) on the prompts ``prompt_indices`` of the trace. The
    DPP bound R_opt <= R_GELATO + B_0 / V needs ``gelato`` among ``agents``; the clairvoyant
    bound needs ``target_only`` (its one-token rounds give each episode's channel draws round
    by round, which are every agent's under i.i.d. block fading).

    Args:
        run_dir: the training run directory (the trained agent; results and plots go here).
        env_config: the evaluation env (replay; its trace is the training trace).
        prompt_indices: the held-out trace prompt indices.
        agents: ``(registry name, label, params)`` of the agents to compare with.
        n_episodes: episodes per agent.
        seed: seed of the first episode.
        clairvoyant: also compute the clairvoyant offline bound.
    """
    from agents.bounds import bounds_from_runs
    from agents.evaluation import markdown_table, results_table, run_agent, write_results
    from agents.registry import make_agent
    from agents.training import PromptSubset, build_backend
    from gelato_env.env import GelatoEnv
    from gelato_env.system import EnergyBudget

    kwargs = {**env_config.to_kwargs(), "horizon": None, "reward_mode": "throughput"}

    def make_env(overrides: Mapping[str, Any]) -> GelatoEnv:
        backend = PromptSubset(build_backend(env_config), prompt_indices)
        return GelatoEnv(**{**kwargs, **overrides, "backend": backend})

    policies: list[tuple[str, str, AnalyticPolicy]] = [
        ("learned", "learned", LearnedPolicy(run_dir))
    ]
    policies += [(label, name, make_agent(name, **params)) for name, label, params in agents]
    runs = [
        run_agent(policy, make_env, label=label, agent=name, n_episodes=n_episodes, seed=seed)
        for label, name, policy in policies
    ]
    rows = results_table(runs)
    write_results(rows, run_dir)

    env = make_env({})
    gelato_policy = next((p for _, name, p in policies if name == "gelato"), None)
    bounds = bounds_from_runs(
        runs,
        v=None if gelato_policy is None else float(gelato_policy.v),  # type: ignore[attr-defined]
        system=env.params,
        budget=EnergyBudget(env.config.budget_mode, env.config.budget_value),
        trace=env.backend.inner.trace,  # type: ignore[attr-defined]
        max_new_tokens=env.backend.max_new_tokens,
        prompt_indices=prompt_indices,
        clairvoyant=clairvoyant,
    )
    env.close()

    lines = [markdown_table(rows), ""]
    lines += [f"- {key}: {value:.3f}" for key, value in bounds.items()]
    markdown = "\n".join(lines)
    (run_dir / "results.md").write_text(markdown + "\n")
    plot = plot_against_bounds(rows, bounds, run_dir / "plots" / "learned_vs_gelato.png")
    return Comparison(rows=rows, markdown=markdown, bounds=bounds, plot=plot)


def plot_against_bounds(
    rows: Sequence[Mapping[str, Any]], bounds: Mapping[str, float], path: Path
) -> Path:
    """Bar chart of each agent's throughput with GELATO's bounds as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.0, 3.5))
    labels = [str(r["agent"]) for r in rows]
    colors = ["C1" if label == "learned" else "C0" for label in labels]
    ax.bar(labels, [float(r["throughput_tps"]) for r in rows], color=colors)
    styles = {
        "dpp_upper_tps": ("GELATO bound R_GELATO + B0/V", "C3", "--"),
        "clairvoyant_upper_tps": ("clairvoyant bound", "C2", ":"),
    }
    for key, (label, color, style) in styles.items():
        if key in bounds and np.isfinite(bounds[key]):
            ax.axhline(
                bounds[key], color=color, linestyle=style, label=f"{label}: {bounds[key]:.1f}"
            )
    ax.set_ylabel("throughput (tokens/s)")
    ax.set_title("held-out prompts: learned vs GELATO")
    ax.tick_params(axis="x", labelrotation=30)
    if any(key in bounds for key in styles):
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
