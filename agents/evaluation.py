"""One evaluation loop for every agent (analytic or learned), over one or several seeds.

Every agent runs over the same prompts, seeds and channel draws: under evaluation seed s, episode
i resets the env with seed ``s * SEED_STRIDE + i`` (so the prompt choice and every channel draw of
the episode are the same for all agents under greedy replay), and the energy queue persists
across the episodes of a seed (a long-term run, the setting the budget is defined for).
Consecutive env seeds play distinct prompts (a pass without replacement,
:mod:`gelato_env.prompt_order`), so n episodes on m >= n prompts play n different prompts; with
fewer prompts than episodes a warning says that prompts repeat. Another evaluation seed starts
the pass elsewhere in the prompt order and draws other channel states (the env's ``np_random``
is seeded per episode). :func:`run_agent_seeds` plays several seeds; :mod:`agents.results`
reports each metric as its mean over seeds with a 95 % Student-t confidence interval.
Evaluations play held-out prompts: :func:`heldout_prompts` gives the evaluation side of the hash
split that ``scripts/train.py`` and GELATO's calibration also use (wrap the backend in
:class:`agents.training.PromptSubset`).

Each analytic agent gets its own env built from the shared env settings plus the agent's
:meth:`~agents.base.AnalyticPolicy.env_overrides`; when binding calibrates a setting the agent
needs (GELATO's entropy-exit thresholds) the env is rebuilt with it. After every step the round's
``info`` goes to the agent's :meth:`~agents.base.AnalyticPolicy.update`.

Lossless check: the output of every lossless agent must be token-identical to target-only greedy
decoding of the same prompt (the recorded target output on replay, where it holds by
construction; the target-only agent's output on the live backend).

Over 500 lines because playing agents and checking what they played are one concept: the
runs over seeds, the held-out prompt split they are refused outside of, the lossless check and
the acceptance calibration all read the same ``AgentRun`` records.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from agents.base import AnalyticPolicy, Policy
from agents.baselines import DeviceOnly

FloatArray = npt.NDArray[np.float64]

#: per-round quantities logged from the env's ``info`` (plus ``episode``, the episode index, and
#: ``alpha_hat``, the acceptance estimate an agent planned with, NaN for agents without one)
ROUND_KEYS = (
    "episode",
    "alpha_hat",
    "prompt_index",
    "budget",
    "n_drafted",
    "n_accepted",
    "n_tokens",
    "latency_s",
    "energy_j",
    "queue",
    "rate_bps",
    "allowance_j",
)


class LosslessError(AssertionError):
    """An agent's output differs from target-only greedy decoding."""


@dataclass(frozen=True)
class AgentRun:
    """One agent's evaluation.

    Attributes:
        label: row label (agent name, or a user label for variants).
        agent: the registry name.
        rounds: per-round logs, each an array of shape ``(n_rounds,)`` (keys :data:`ROUND_KEYS`;
            ``budget`` is the planned gamma~, ``n_drafted`` the realized gamma).
        outputs: generated token ids per episode (replay/live backend ``output_ids``).
        prompts: prompt index of each episode.
        budget_mode: the env's budget mode.
        budget_value: the env's budget value.
        lossless: whether the agent is a lossless SD scheme.
        closed_form: metrics of agents evaluated without the env (device-only), else None.
        seed: the evaluation seed (env seeds :func:`episode_seeds`).
    """

    label: str
    agent: str
    rounds: dict[str, FloatArray]
    outputs: tuple[tuple[int, ...], ...]
    prompts: tuple[int, ...]
    budget_mode: str
    budget_value: float
    lossless: bool = True
    closed_form: Mapping[str, float] | None = None
    seed: int = 0

    def metrics(self) -> dict[str, float]:
        """Throughput, energy, budget use, acceptance and backlog of the run."""
        if self.closed_form is not None:
            return dict(self.closed_form)
        r = self.rounds
        n_tokens = float(r["n_tokens"].sum())
        latency = float(r["latency_s"].sum())
        energy = float(r["energy_j"].sum())
        n_rounds = len(r["n_tokens"])
        average = {
            "per_round": energy / n_rounds,
            "per_token": energy / n_tokens,
            "per_second": energy / latency,
        }[self.budget_mode]
        return {
            "throughput_tps": n_tokens / latency,
            "energy_per_token_j": energy / n_tokens,
            "energy_avg": average,
            "energy_budget": self.budget_value,
            "budget_ratio": average / self.budget_value,
            "budget_violation": max(0.0, average / self.budget_value - 1.0),
            "mean_accepted": float(r["n_accepted"].mean()),
            "mean_planned_budget": float(r["budget"].mean()),
            "mean_drafted": float(r["n_drafted"].mean()),
            "mean_tokens_per_round": n_tokens / n_rounds,
            "backlog_mean_j": float(r["queue"].mean()),
            "backlog_final_j": float(r["queue"][-1]),
            "n_rounds": float(n_rounds),
            "n_tokens": n_tokens,
        }


ProgressFactory = Callable[[int, str], Any]

#: evaluation seed s plays env seeds ``s * SEED_STRIDE + i`` (episode i): consecutive within a
#: seed (one pass over the prompts), disjoint across seeds for up to SEED_STRIDE episodes, and a
#: prime, so that seed s starts the prompt order at ``s * SEED_STRIDE mod n_prompts``, a
#: different place for every seed below n_prompts (seed 0 plays env seeds 0, 1, 2, ...) [D]
SEED_STRIDE = 10_007


def episode_seeds(seed: int, n_episodes: int) -> range:
    """The env seeds evaluation seed ``seed`` resets its episodes with.

    >>> list(episode_seeds(0, 3)), list(episode_seeds(2, 2))
    ([0, 1, 2], [20014, 20015])
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not 1 <= n_episodes <= SEED_STRIDE:
        raise ValueError(f"n_episodes must be in [1, {SEED_STRIDE}], got {n_episodes}")
    return range(seed * SEED_STRIDE, seed * SEED_STRIDE + n_episodes)


def run_agent(
    policy: Policy,
    make_env: Callable[[Mapping[str, Any]], Any],
    *,
    label: str,
    agent: str,
    n_episodes: int,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
    progress: ProgressFactory | None = None,
) -> AgentRun:
    """Run ``policy`` for ``n_episodes`` episodes of evaluation seed ``seed``.

    Args:
        policy: any SB3-style policy; :class:`AnalyticPolicy` instances are bound to the env and
            their env overrides applied.
        make_env: builds an env from keyword arguments.
        label: the row label.
        agent: the registry name.
        n_episodes: episodes (prompts) to run, >= 1.
        seed: the evaluation seed (env seeds :func:`episode_seeds`).
        env_kwargs: shared env settings (before the agent's overrides).
        progress: optional ``(total, desc) -> tqdm-like`` progress bar factory.
    """
    (run,) = run_agent_seeds(
        policy, make_env, label=label, agent=agent, n_episodes=n_episodes, seeds=(seed,),
        env_kwargs=env_kwargs, progress=progress,
    )  # fmt: skip
    return run


def run_agent_seeds(
    policy: Policy,
    make_env: Callable[[Mapping[str, Any]], Any],
    *,
    label: str,
    agent: str,
    n_episodes: int,
    seeds: Sequence[int],
    env_kwargs: Mapping[str, Any] | None = None,
    progress: ProgressFactory | None = None,
) -> list[AgentRun]:
    """One :func:`run_agent` run per evaluation seed, binding the policy once.

    Each seed plays a fresh copy of the just-bound policy (binding is deterministic, so this is
    what binding anew would give, without repeating a costly calibration) from an empty queue.

    Args:
        policy: as in :func:`run_agent`.
        make_env: builds an env from keyword arguments.
        label: the row label.
        agent: the registry name.
        n_episodes: episodes (prompts) per seed, in [1, :data:`SEED_STRIDE`].
        seeds: distinct evaluation seeds >= 0, at least one.
        env_kwargs: shared env settings (before the agent's overrides).
        progress: optional ``(total, desc) -> tqdm-like`` progress bar factory (one bar over
            every seed's episodes).

    Returns:
        The runs, in ``seeds`` order.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    plays = [episode_seeds(s, n_episodes) for s in seeds]  # checks the values before any work
    kwargs = dict(env_kwargs or {})
    lossless = True
    if isinstance(policy, AnalyticPolicy):
        overrides = policy.env_overrides()
        kwargs.update(overrides.env_kwargs())
        lossless = overrides.lossless
    env = make_env(kwargs)
    base = env.unwrapped
    config = base.config
    if isinstance(policy, DeviceOnly):
        metrics = DeviceOnly.closed_form(base.params)
        env.close()
        closed = {"throughput_tps": metrics.throughput_tps,
                  "energy_per_token_j": metrics.energy_per_token_j}  # fmt: skip
        mode, value = config.budget_mode, config.budget_value
        return [
            AgentRun(label, agent, {}, (), (), mode, value, False, closed, seed=s) for s in seeds
        ]
    if isinstance(policy, AnalyticPolicy):
        env, base = _bind(policy, env, make_env, kwargs)
    check_heldout(policy, label, _played_prompts(base.backend))
    if base.backend.n_prompts < n_episodes:
        warnings.warn(
            f"{label}: {n_episodes} episodes on {base.backend.n_prompts} prompts: prompts repeat "
            "(each pass over the prompts plays every prompt once)",
            stacklevel=2,
        )
    bound = _fresh_copy(policy) if len(seeds) > 1 else policy
    bar = progress(n_episodes * len(seeds), label) if progress else None
    runs = []
    for i, (seed, env_seeds) in enumerate(zip(seeds, plays, strict=True)):
        played = policy if i == 0 else _fresh_copy(bound)
        runs.append(_play(played, env, label=label, agent=agent, env_seeds=env_seeds,
                          seed=seed, lossless=lossless, bar=bar))  # fmt: skip
    if bar is not None:
        bar.close()
    env.close()
    return runs


def _played_prompts(backend: Any) -> tuple[int, ...] | None:
    """Trace prompt indices a backend serves (a subset's, or the whole trace's); None if live."""
    trace = getattr(backend, "trace", None)
    if trace is None:
        return None
    indices = getattr(backend, "indices", None)
    return tuple(range(trace.n_prompts)) if indices is None else tuple(indices)


def _fresh_copy(policy: Policy) -> Policy:
    """A deep copy of ``policy`` that shares its bound env (state copied, env not)."""
    env = getattr(policy, "env", None)
    memo = {} if env is None else {id(env): env}
    return copy.deepcopy(policy, memo)


def _play(
    policy: Policy,
    env: Any,
    *,
    label: str,
    agent: str,
    env_seeds: range,
    seed: int,
    lossless: bool,
    bar: Any,
) -> AgentRun:
    """Play the episodes ``env_seeds`` (the queue kept across them) and log every round."""
    base = env.unwrapped
    analytic = policy if isinstance(policy, AnalyticPolicy) else None
    logs: dict[str, list[float]] = {key: [] for key in ROUND_KEYS}
    outputs, prompts = [], []
    for episode, env_seed in enumerate(env_seeds):
        obs, reset_info = env.reset(seed=env_seed, options={"keep_queue": episode > 0})
        prompts.append(int(reset_info["prompt_index"]))
        start = np.ones(1, dtype=bool)
        done = False
        while not done:
            action, _ = policy.predict(obs, episode_start=start, deterministic=True)
            start = np.zeros(1, dtype=bool)
            plan = getattr(policy, "last_plan", None)
            obs, _, terminated, truncated, info = env.step(action)
            if analytic is not None:
                analytic.update(info)
            info = {**info, "episode": episode, "alpha_hat": getattr(plan, "alpha", math.nan)}
            for key in ROUND_KEYS:
                logs[key].append(float(info[key]))
            done = terminated or truncated
        outputs.append(tuple(int(x) for x in getattr(base.backend, "output_ids", ())))
        if bar is not None:
            bar.update(1)
    rounds = {key: np.asarray(values, dtype=np.float64) for key, values in logs.items()}
    return AgentRun(
        label, agent, rounds, tuple(outputs), tuple(prompts), base.config.budget_mode,
        float(base.config.budget_value), lossless=lossless, seed=seed,
    )  # fmt: skip


def _bind(
    policy: AnalyticPolicy,
    env: Any,
    make_env: Callable[[Mapping[str, Any]], Any],
    kwargs: dict[str, Any],
) -> tuple[Any, Any]:
    """Bind ``policy``; rebuild the env when binding changed the settings the policy needs."""
    before = policy.env_overrides().env_kwargs()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        policy.bind(env)
    after = policy.env_overrides().env_kwargs()
    if after != before:  # the second bind repeats whatever still applies
        env.close()
        env = make_env({**kwargs, **after})
        policy.bind(env)
    else:
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return env, env.unwrapped


def heldout_prompts(trace: Any, eval_fraction: float = 0.2) -> tuple[int, ...]:
    """Trace prompt indices an evaluation plays: the held-out side of the hash split.

    The split is :func:`agents.training.split_prompts` (SHA-256 of each prompt id), the one
    ``scripts/train.py`` holds out and GELATO never calibrates on
    (:func:`agents.gelato.training_prompts`).
    """
    from agents.training import split_prompts

    return split_prompts(tuple(trace.header.prompt_ids), eval_fraction).eval


def heldout_env_factory(
    env_kwargs: Mapping[str, Any], eval_fraction: float = 0.2
) -> tuple[Callable[[Mapping[str, Any]], Any], tuple[int, ...] | None]:
    """An env builder over the held-out prompts of a replay env's trace, and their indices.

    Replay (``env_kwargs["trace_path"]`` set): every env serves :func:`heldout_prompts` through
    :class:`agents.training.PromptSubset` (env prompt i is trace prompt ``indices[i]``). Live:
    the backend's prompts as they are (None).
    """
    from gelato_env.env import GelatoEnv

    kwargs = dict(env_kwargs)
    if kwargs.get("backend", "replay") != "replay" or kwargs.get("trace_path") is None:
        return (lambda extra: GelatoEnv(**{**kwargs, **extra})), None
    from agents.training import PromptSubset
    from gelato_env.system import system_setting
    from gelato_env.traces.replay import ReplayBackend
    from gelato_env.traces.store import load_trace

    trace = load_trace(kwargs["trace_path"])
    held = heldout_prompts(trace, eval_fraction)
    overrides = dict(kwargs.get("system_overrides") or {})
    gamma_max = system_setting(kwargs.get("system", "paper"), **overrides).gamma_max

    def make_env(extra: Mapping[str, Any]) -> Any:
        backend = ReplayBackend(
            trace, gamma_max=gamma_max, max_new_tokens=kwargs.get("max_new_tokens")
        )
        return GelatoEnv(**{**kwargs, **extra, "backend": PromptSubset(backend, held)})

    return make_env, held


def check_heldout(policy: Policy, label: str, prompt_indices: Sequence[int] | None) -> None:
    """Refuse to score a learned agent on prompts it was trained on.

    A trained agent's card (:class:`agents.training.AgentCard`) lists its training prompts
    (trace prompt indices); the evaluation plays ``prompt_indices`` of the same trace (the
    held-out side of its split, :func:`heldout_env_factory`). Other agents pass.

    Args:
        policy: the agent about to be evaluated.
        label: its row label (for the message).
        prompt_indices: the trace prompt indices the evaluation plays; None on a live backend,
            where the prompts cannot be matched to the card's (a warning says so).

    Raises:
        ValueError: the evaluation plays some of the agent's training prompts.
    """
    card = getattr(policy, "card", None)
    split = getattr(card, "split", None)
    if not isinstance(split, Mapping) or "train" not in split:
        return
    if prompt_indices is None:
        warnings.warn(
            f"{label}: cannot check that the evaluation's prompts are held out from the learned "
            "agent's training prompts (no trace to match them against)",
            stacklevel=2,
        )
        return
    overlap = sorted(set(prompt_indices) & {int(p) for p in split["train"]})
    if overlap:
        raise ValueError(
            f"{label}: the evaluation plays {len(overlap)} of the learned agent's "
            f"{len(split['train'])} training prompts (trace prompt indices {overlap[:10]}"
            f"{' ...' if len(overlap) > 10 else ''}): scores on training prompts flatter it; "
            "evaluate with the eval_fraction and trace it was trained with"
        )


def acceptance_calibration(
    run: AgentRun, trace: Any = None, prompt_indices: Sequence[int] | None = None
) -> dict[str, float]:
    """An agent's planned acceptance alpha^ against the realized per-token acceptance.

    Two like-for-like comparisons:

    * every planned round (idle ones included: a low estimate is what makes a round idle):
      the mean alpha^ over rounds against the mean acceptance of the draft token each round
      would verify first, read from the trace (``trace.accept_prob[row, 0]`` at the round's
      position; needs ``trace``). ``relative_error`` = the first / the second - 1;
    * the verified draft tokens (the accepted ones plus the first rejected one of each round):
      each drafting round's alpha^ weighted by its verified tokens against sum n_accepted /
      sum verified, the per-token acceptance N^(gamma) = (1 - alpha^(gamma+1)) / (1 - alpha)
      models (``relative_error_weighted``; needs no trace, so it also checks live runs).

    Args:
        run: the run (its rounds log ``alpha_hat``, ``episode`` and ``prompt_index``).
        trace: the replayed trace, or None.
        prompt_indices: trace prompt index of each env prompt index (None: identity).

    Returns:
        ``alpha_hat_mean``, ``next_token_acceptance`` (NaN without a trace),
        ``relative_error``, ``alpha_hat_weighted``, ``realized_acceptance``,
        ``relative_error_weighted``, ``n_verified``, ``n_rounds``.
    """
    r = run.rounds
    drafted, accepted = r["n_drafted"], r["n_accepted"]
    verified = np.where(drafted > 0, np.minimum(accepted + 1.0, drafted), 0.0)
    alpha = r["alpha_hat"]
    n_verified = float(verified.sum())
    weighted = float(np.sum(alpha * verified) / n_verified) if n_verified else math.nan
    realized = float(accepted.sum() / n_verified) if n_verified else math.nan
    mean = float(np.mean(alpha)) if alpha.size else math.nan
    nxt = _next_token_acceptance(run, trace, prompt_indices) if trace is not None else math.nan
    return {
        "alpha_hat_mean": mean,
        "next_token_acceptance": nxt,
        "relative_error": mean / nxt - 1.0 if nxt else math.nan,
        "alpha_hat_weighted": weighted,
        "realized_acceptance": realized,
        "relative_error_weighted": weighted / realized - 1.0 if realized else math.nan,
        "n_verified": n_verified,
        "n_rounds": float(alpha.size),
    }


def _next_token_acceptance(
    run: AgentRun, trace: Any, prompt_indices: Sequence[int] | None
) -> float:
    """Mean recorded acceptance of the first draft token at each round's start position."""
    r = run.rounds
    episode = r["episode"].astype(np.int64)
    tokens = r["n_tokens"].astype(np.int64)
    # position of each round's first token: tokens emitted before it within its episode
    ends = np.cumsum(tokens)
    starts = np.r_[0, np.flatnonzero(np.diff(episode)) + 1]
    offset = np.repeat(ends[starts] - tokens[starts], np.diff(np.r_[starts, len(tokens)]))
    position = ends - tokens - offset
    prompt = r["prompt_index"].astype(np.int64)
    if prompt_indices is not None:
        prompt = np.asarray(prompt_indices, dtype=np.int64)[prompt]
    rows = np.asarray(trace.prompt_offsets, dtype=np.int64)[prompt] + position
    return float(np.mean(np.asarray(trace.accept_prob[rows, 0], dtype=np.float64)))


def stopped_drafting(run: AgentRun, min_rounds: int = 10) -> int:
    """Episodes that stopped drafting for good: planned gamma~ = 0 from some round to the end.

    Counted when the trailing run of gamma~ = 0 rounds is at least ``min_rounds`` long [D] (a
    short idle stretch at the end of a prompt is a decision, not a lock).
    """
    r = run.rounds
    count = 0
    for episode in np.unique(r["episode"]).tolist():
        planned = r["budget"][r["episode"] == episode]
        nonzero = np.flatnonzero(planned > 0)
        trailing = len(planned) - (int(nonzero[-1]) + 1 if nonzero.size else 0)
        count += int(trailing >= min_rounds)
    return count


def check_lossless(runs: Sequence[AgentRun], reference: Mapping[int, Sequence[int]]) -> None:
    """Assert every lossless run's outputs equal the reference (target-only greedy) outputs.

    Args:
        runs: agent runs (non-lossless ones are skipped).
        reference: prompt index -> target-only greedy output token ids.

    Raises:
        LosslessError: naming the agent and the prompt whose output differs.
    """
    for run in runs:
        if not run.lossless or run.closed_form is not None:
            continue
        for prompt, output in zip(run.prompts, run.outputs, strict=True):
            expected = tuple(int(x) for x in reference[prompt][: len(output)])
            if output != expected or len(output) == 0:
                raise LosslessError(
                    f"agent {run.label!r}: output for prompt {prompt} differs from target-only "
                    f"greedy decoding ({len(output)} tokens)"
                )


@dataclass
class GelatoTimeline:
    """Per-round planned gamma~, realized gamma and Q of a GELATO run (for the timeline plot)."""

    planned: list[int] = field(default_factory=list)
    realized: list[int] = field(default_factory=list)
    queue_j: list[float] = field(default_factory=list)

    @classmethod
    def from_run(cls, run: AgentRun) -> GelatoTimeline:
        """Read the timeline from a run's round logs."""
        r = run.rounds
        return cls(
            planned=r["budget"].astype(int).tolist(),
            realized=r["n_drafted"].astype(int).tolist(),
            queue_j=r["queue"].tolist(),
        )
