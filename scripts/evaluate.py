"""Evaluate GELATO against the baselines: results table (CSV + Markdown), plots, W&B (offline).

    python scripts/evaluate.py                                  # the default comparison
    python scripts/evaluate.py +experiment=paper_140ms          # a named experiment
    python scripts/evaluate.py -m env.budget_value=0.1,0.2,0.3  # a Hydra multirun sweep
    python scripts/evaluate.py +experiment=smoke env.trace_path=/path/to/micro/trace
    python scripts/evaluate.py seeds=[0,1,2,3,4,5,6,7,8,9]      # tighter intervals
    python scripts/evaluate.py 'agents=[gelato,static_topp,{preset:static_topp,params:{gamma:2}}]'

Every agent plays the trace's held-out prompts (the hash split ``scripts/train.py`` holds out and
GELATO never calibrates on; ``eval_fraction``), each once per evaluation seed (``seeds``; a
learned agent is refused on prompts it was trained on). Tables give each metric's mean over
seeds with its 95 % Student-t confidence interval. The headline compares GELATO with ``dssd``
(the paper's named reference) and, separately, with the strongest baseline that meets the energy
budget. Outputs land in Hydra's run directory: results.csv (means, ``*_ci95``),
results_per_seed.csv, results.md, plots/ (every figure as PDF, SVG and PNG; sweep CSVs).

Over 500 lines because it is the main job's one script: configuration checks, the run over
seeds, bounds, sweeps and W&B logging, each a function the tests call (the computations live
in ``agents``).
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from agents.evaluation import AgentRun, check_lossless, heldout_env_factory, run_agent_seeds
from agents.plots import (
    FORMATS,
    plot_comparison,
    plot_gains,
    plot_sweep,
    plot_timeline,
    plot_v_tradeoff,
)
from agents.registry import AgentPreset, load_preset, make_agent
from agents.results import (
    CI,
    headline,
    markdown_table,
    per_seed_rows,
    seed_table,
    t_interval,
    write_results,
)
from gelato_env.conf.schema import check_composed, refuse_moved_overrides
from gelato_env.config import EnvConfig
from gelato_env.env import GelatoEnv

#: the keys of an ``agents`` entry given as a mapping (a preset variant)
AGENT_ENTRY_KEYS = ("preset", "label", "params")
_UNSET = object()  # a parameter a preset does not set


def variant_label(label: str, changed: Mapping[str, Any]) -> str:
    """A preset's label with the parameters a variant changes, e.g. ``static_topp[gamma=3]``.

    >>> variant_label("static_topp", {"gamma": 3, "protocol": "full"})
    'static_topp[gamma=3,protocol=full]'
    """
    if not changed:
        return label
    return f"{label}[{','.join(f'{k}={v}' for k, v in sorted(changed.items()))}]"


def agent_specs(entries: Sequence[Any], overrides: Mapping[str, Any]) -> list[AgentPreset]:
    """The agents of a table, in order, from ``agents`` entries and ``agent_overrides``.

    An entry is a preset (a ``conf/agent`` name or a ``.yaml`` path), whose parameters
    ``agent_overrides[<its label>]`` tunes in place (the label stays), or a mapping
    ``{preset: <preset>, params: {...}, label: <row label>}``, a *variant*: the preset with
    ``params`` changed, labelled ``label`` or, without one, :func:`variant_label` of the preset's
    label and the parameters that differ from the preset's. So two variants of one baseline
    share a table: ``agents=[static_topp,{preset:static_topp,params:{gamma:2}}]``.

    Raises:
        ValueError: an entry that is neither, unknown keys, an unknown preset, non-mapping
            params, or two agents with one label.
    """
    specs: list[AgentPreset] = []
    for entry in entries:
        if isinstance(entry, str):
            specs.append(load_preset(entry, overrides))
            continue
        if not isinstance(entry, Mapping) or not isinstance(entry.get("preset"), str):
            raise ValueError(
                f"an agents entry must be a preset name or a mapping with keys "
                f"{list(AGENT_ENTRY_KEYS)} (preset required), got {entry!r}"
            )
        unknown = sorted(set(entry) - set(AGENT_ENTRY_KEYS))
        if unknown:
            raise ValueError(f"agents entry {dict(entry)!r}: unknown keys {unknown}; valid keys: "
                             f"{list(AGENT_ENTRY_KEYS)}")  # fmt: skip
        params = entry.get("params") or {}
        if not isinstance(params, Mapping):
            raise ValueError(f"agents entry {dict(entry)!r}: params must be a mapping, got "
                             f"{params!r}")  # fmt: skip
        base = load_preset(entry["preset"])
        changed = {k: v for k, v in params.items() if base.params.get(k, _UNSET) != v}
        label = entry.get("label") or variant_label(base.label, changed)
        specs.append(AgentPreset(base.name, str(label), {**base.params, **params}))
    labels = [spec.label for spec in specs]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ValueError(
            f"agents: several entries are labelled {twice}: give variants their own label (an "
            "agents entry {preset: ..., params: ..., label: ...})"
        )
    return specs


def evaluate(cfg: DictConfig, env_kwargs: dict[str, Any], agents: Sequence[Any],
             n_episodes: int | None, agent_overrides: dict[str, Any],
             progress: bool) -> list[list[AgentRun]]:  # fmt: skip
    """Every agent over every seed of ``cfg.seeds``: ``groups[j][i]`` is agent i's run of seed j."""
    make_env, held = heldout_env_factory(env_kwargs, float(cfg.eval_fraction))
    if n_episodes is None:  # every held-out prompt once
        n_episodes = len(held) if held is not None else make_env({}).backend.n_prompts
    seeds = [int(s) for s in cfg.seeds]

    def bar(total: int, desc: str) -> Any:
        return tqdm(total=total, desc=desc, unit="ep", leave=False)

    per_agent = []
    for spec in agent_specs(agents, agent_overrides):
        policy = make_agent(spec.name, **spec.params)
        per_agent.append(
            run_agent_seeds(policy, make_env, label=spec.label, agent=spec.name,
                            n_episodes=n_episodes, seeds=seeds, env_kwargs={},
                            progress=bar if progress else None)
        )  # fmt: skip
    return [list(group) for group in zip(*per_agent, strict=True)]


WANDB_MODES = ("offline", "online", "disabled")


def check_config(cfg: DictConfig, where: str = "an experiment file or an override") -> None:
    """Refuse a bad config before any work: env values (EnvConfig), the system's source, and seed,
    counts, agent lists, flags and W&B mode by type and value (unknown keys fail at composition:
    gelato_env/conf/schema.py). ``where`` says where the composed values came from."""
    check_composed(cfg)
    values = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(values, dict)
    if "experiment" in values:  # a group file without the package line lands under its group
        raise ValueError(
            f"config keys landed under 'experiment.' ({values['experiment']!r}, from {where}): "
            f"an experiment file must start with the line '# @package _global_'"
        )
    for label, params in values["agent_overrides"].items():
        if not isinstance(params, dict):
            raise ValueError(f"agent_overrides.{label} must be a mapping of agent parameters, "
                             f"got {params!r}")  # fmt: skip
    try:
        EnvConfig.from_dict(values["env"])  # names and values of the env kwargs
    except (TypeError, ValueError) as err:
        raise ValueError(f"env: {err}") from None
    _check_seeds(values["seeds"])
    _check_episodes(values["n_episodes"], values["eval_fraction"])
    _check_int("sweep.n_episodes", values["sweep"]["n_episodes"], low=1)
    for name in ("agents", "sweep.agents"):
        agents = values[name] if name == "agents" else values["sweep"]["agents"]
        if not isinstance(agents, list):
            raise ValueError(f"{name} must be a list of conf/agent names, got {agents!r}")
        if not agents:
            raise ValueError(f"{name} must not be empty")
        agent_specs(agents, values["agent_overrides"])  # presets, variants, unique labels
    for name, flag in (("check_lossless", values["check_lossless"]),
                       ("progress", values["progress"]),
                       ("sweep.enabled", values["sweep"]["enabled"])):  # fmt: skip
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be true or false, got {flag!r}")
    if values["wandb"]["mode"] not in WANDB_MODES:
        raise ValueError(f"wandb.mode must be one of {list(WANDB_MODES)}, got "
                         f"{values['wandb']['mode']!r}")  # fmt: skip


def _check_seeds(seeds: Any) -> None:
    if not isinstance(seeds, list) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    for seed in seeds:
        _check_int("seeds[i]", seed, low=0)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")


def _check_episodes(n_episodes: Any, eval_fraction: Any) -> None:
    if n_episodes is not None:  # null: every held-out prompt once
        _check_int("n_episodes", n_episodes, low=1)
    if not isinstance(eval_fraction, (int, float)) or not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be a number in (0, 1), got {eval_fraction!r}")


def _check_int(name: str, value: Any, *, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


def config_sources() -> str:
    """Where this run's config values came from: the experiment file (if any) and overrides."""
    hydra_cfg = HydraConfig.get()
    choice = hydra_cfg.runtime.choices.get("experiment")
    if not choice:
        return "a command-line override"
    for source in hydra_cfg.runtime.config_sources:
        path = Path(source.path) / "experiment" / f"{choice}.yaml"
        if source.schema == "file" and path.is_file():
            return f"{path} or a command-line override"
    return f"experiment {choice!r} or a command-line override"


def remove_empty_run_dir() -> None:
    """Remove Hydra's run dir if it holds only Hydra's own records (``.hydra/``, the job log),
    with its parents inside the cwd while empty: a run that fails before writing results
    leaves nothing behind (``outputs/<date>/<time>`` included)."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.RUN:
        return
    run_dir = Path(hydra_cfg.runtime.output_dir).resolve()
    own = {run_dir / f"{hydra_cfg.job.name}.log"}
    if hydra_cfg.output_subdir is not None:
        own.add(run_dir / hydra_cfg.output_subdir)
    if not run_dir.is_dir() or not set(run_dir.iterdir()) <= own:
        return
    for path in own:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    cwd, directory = Path.cwd().resolve(), run_dir
    while directory != cwd and not any(directory.iterdir()):
        directory.rmdir()
        if cwd not in directory.parents:  # outside the cwd: the run dir itself only
            break
        directory = directory.parent


def main_impl(cfg: DictConfig) -> list[dict[str, Any]]:
    check_config(cfg, config_sources())
    out_dir = Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir)
    env_kwargs = OmegaConf.to_container(cfg.env, resolve=True)
    assert isinstance(env_kwargs, dict)
    replay = env_kwargs.get("backend", "replay") == "replay"
    if replay and env_kwargs.get("trace_path") is None:
        from gelato_env.traces.default import default_trace_path  # shipped in the package

        env_kwargs["trace_path"] = str(default_trace_path())
    overrides = OmegaConf.to_container(cfg.agent_overrides, resolve=True)
    assert isinstance(overrides, dict)
    agents = OmegaConf.to_container(cfg.agents, resolve=True)
    assert isinstance(agents, list)
    progress = bool(cfg.progress)

    # 1. the comparison, every seed
    n_episodes = None if cfg.n_episodes is None else int(cfg.n_episodes)
    groups = evaluate(cfg, env_kwargs, agents, n_episodes, overrides, progress)
    held = heldout_env_factory(env_kwargs, float(cfg.eval_fraction))[1]
    if cfg.check_lossless:
        for runs in groups:
            check_lossless(runs, lossless_reference(env_kwargs, runs, held))
    rows = seed_table(groups)
    write_results(rows, out_dir, per_seed_rows(groups))
    specs = agent_specs(agents, overrides)
    bounds = gelato_bounds(env_kwargs, groups, specs, held)
    lines = [f"- {line}" for line in bounds_lines(bounds)]
    lines += [f"- {line}" for line in headline(rows)]
    with (out_dir / "results.md").open("a") as f:
        f.write("\n" + "\n".join(lines) + "\n")
    print(markdown_table(rows))
    print("\n".join(lines))

    # 2. sweeps and plots
    plots = out_dir / "plots"
    figures = list(plot_comparison(rows, plots / "comparison"))
    gelato = next((run for run in groups[0] if run.agent == "gelato"), None)
    if gelato is not None:
        figures += plot_timeline(gelato, plots / f"timeline_{gelato.label}")
    if cfg.sweep.enabled:
        figures += run_sweeps(cfg, env_kwargs, overrides, plots)

    log_wandb(cfg, rows, groups[0], out_dir)
    print(f"results: {out_dir / 'results.md'}  per seed: {out_dir / 'results_per_seed.csv'}")
    print(f"figures ({', '.join(FORMATS)}): {plots}: "
          f"{', '.join(sorted({p.stem for p in figures}))}")  # fmt: skip
    return rows


def lossless_reference(env_kwargs: dict[str, Any], runs: list[AgentRun],
                       held: tuple[int, ...] | None = None) -> dict[int, list[int]]:  # fmt: skip
    """Target-only greedy output per env prompt: the trace's (replay; env prompt i is trace
    prompt ``held[i]``) or target_only's run of the same seed (live)."""
    if env_kwargs.get("backend", "replay") == "replay":
        from gelato_env.traces import load_trace

        trace = load_trace(env_kwargs["trace_path"], verify=False)
        index = list(range(trace.n_prompts)) if held is None else list(held)
        return {i: trace.output_of(p).tolist() for i, p in enumerate(index)}
    target = next((r for r in runs if r.agent == "target_only"), None)
    if target is None:
        raise ValueError("check_lossless on a live backend needs target_only among the agents")
    return {p: list(out) for p, out in zip(target.prompts, target.outputs, strict=True)}


#: each bound, what it needs, as printed when it cannot be computed
BOUND_NEEDS = {
    "dpp_upper_tps": "GELATO's DPP bound R_GELATO + B_0/V: not computed (needs gelato among the "
    "agents)",
    "clairvoyant_upper_tps": "clairvoyant bound: not computed (needs target_only among the "
    "agents, whose one-token rounds reveal the channel draws, and a replayed greedy trace)",
}


def gelato_bounds(env_kwargs: dict[str, Any], groups: list[list[AgentRun]],
                  specs: list[AgentPreset],
                  held: tuple[int, ...] | None = None) -> dict[str, list[float]]:  # fmt: skip
    """R_GELATO + B_0/V and the clairvoyant optimum per seed, on each seed's channel draws.

    Returns:
        bound name -> its value per seed (tokens/s); a bound that cannot be computed is absent
        (:data:`BOUND_NEEDS` says why). A live backend has no trace: no bounds.
    """
    if env_kwargs.get("backend", "replay") != "replay":
        return {}
    from agents.bounds import bounds_from_runs
    from agents.gelato import DEFAULT_V
    from gelato_env.system import EnergyBudget

    env = GelatoEnv(**env_kwargs)
    gelato = next((spec for spec in specs if spec.name == "gelato"), None)
    v = None
    if gelato is not None:
        v = gelato.params.get("v")
        v = DEFAULT_V[env.config.budget_mode] if v is None else float(v)
    per_seed: dict[str, list[float]] = {}
    for runs in groups:
        bounds = bounds_from_runs(
            runs, v=v, system=env.params,
            budget=EnergyBudget(env.config.budget_mode, env.config.budget_value),
            trace=env.backend.trace, max_new_tokens=env.backend.max_new_tokens,
            prompt_indices=held,
        )  # fmt: skip
        for key, value in bounds.items():
            per_seed.setdefault(key, []).append(value)
    env.close()
    return per_seed


def bounds_lines(bounds: dict[str, list[float]]) -> list[str]:
    """Each bound as ``mean ± 95 % CI`` over seeds, and a line for each one not computed."""
    lines = []
    for key, values in bounds.items():
        mean, half = t_interval(values)
        ci = f" ± {half:.3f}" if math.isfinite(half) else ""
        lines.append(f"{key}: {mean:.3f}{ci} tokens/s")
    lines += [why for key, why in BOUND_NEEDS.items() if key not in bounds]
    return lines


def run_sweeps(cfg: DictConfig, env_kwargs: dict[str, Any], overrides: dict[str, Any],
               plots: Path) -> list[Path]:  # fmt: skip
    """Budget, bandwidth and V sweeps (``sweep.n_episodes`` per seed, every seed) and their
    figures: throughput and energy over the budget per agent, and GELATO's gains vs dssd and
    vs the strongest budget-meeting baseline; returns the figure files. A progress bar counts
    the sweep points (with ``progress``)."""
    n_sweep = int(cfg.sweep.n_episodes)
    agents = OmegaConf.to_container(cfg.sweep.agents, resolve=True)
    assert isinstance(agents, list)
    n_points = len(cfg.sweep.budget_values) + len(cfg.sweep.bandwidths_hz) + len(cfg.sweep.v_values)
    bar = tqdm(total=n_points, desc="sweeps", unit="point", disable=not cfg.progress)
    by_budget: dict[str, list[tuple[float, dict[str, float]]]] = {}
    for value in cfg.sweep.budget_values:
        kw = {**env_kwargs, "budget_value": float(value)}
        sweep_point(evaluate(cfg, kw, agents, n_sweep, overrides, False), float(value), by_budget)
        bar.update(1)
    by_bandwidth: dict[str, list[tuple[float, dict[str, float]]]] = {}
    for value in cfg.sweep.bandwidths_hz:
        sys_over = {**env_kwargs.get("system_overrides", {}), "bandwidth_hz": float(value)}
        kw = {**env_kwargs, "system_overrides": sys_over}
        sweep_point(evaluate(cfg, kw, agents, n_sweep, overrides, False), float(value) / 1e6,
                    by_bandwidth)  # fmt: skip
        bar.update(1)
    unit = BUDGET_UNITS[str(env_kwargs.get("budget_mode", "per_round"))]
    figures: list[Path] = []
    gains = GAIN_SERIES
    budget_gains = {k: v for k, v in by_budget.items() if k in gains}
    bandwidth_gains = {k: v for k, v in by_bandwidth.items() if k in gains}
    figures += plot_gains(budget_gains, f"energy budget ({unit})", plots / "gain_vs_budget")
    figures += plot_gains(bandwidth_gains, "uplink bandwidth (MHz)", plots / "gain_vs_bandwidth",
                          logx=True)  # fmt: skip
    write_sweep(by_budget, plots / "sweep_budget.csv", "budget_value")
    write_sweep(by_bandwidth, plots / "sweep_bandwidth.csv", "bandwidth_mhz")
    by_budget = {k: v for k, v in by_budget.items() if k not in gains}
    by_bandwidth = {k: v for k, v in by_bandwidth.items() if k not in gains}
    by_v: list[tuple[float, dict[str, float]]] = []
    for value in cfg.sweep.v_values:
        over = {**overrides, "gelato": {**overrides.get("gelato", {}), "v": float(value)}}
        (row,) = seed_table(evaluate(cfg, env_kwargs, ["gelato"], n_sweep, over, False))
        by_v.append((float(value), row))
        bar.update(1)
    bar.close()
    write_sweep({"gelato": by_v}, plots / "sweep_v.csv", "v")
    figures += plot_sweep(by_budget, f"energy budget ({unit})", plots / "throughput_vs_budget")
    figures += plot_sweep(by_bandwidth, "uplink bandwidth (MHz)", plots / "bandwidth_sweep",
                          logx=True)  # fmt: skip
    figures += plot_v_tradeoff(by_v, plots / "v_tradeoff")
    return figures


#: GELATO's gains in a sweep: vs dssd, vs the strongest budget-meeting baseline at each point
GAIN_SERIES = ("GELATO vs dssd", "GELATO vs best meeting the budget")
#: the unit of ``budget_value`` per budget mode (docs/design.md §5)
BUDGET_UNITS = {"per_round": "J/round", "per_token": "J/token", "per_second": "W"}


def sweep_point(groups: list[list[AgentRun]], value: float,
                sweep: dict[str, list[tuple[float, dict[str, Any]]]]) -> None:  # fmt: skip
    """Add one sweep point: each agent's row over seeds, and GELATO's two gains as the
    pseudo-agents :data:`GAIN_SERIES` (``gain``, ``gain_j`` and their CIs)."""
    rows = seed_table(groups)
    for row in rows:
        sweep.setdefault(str(row["agent"]), []).append((value, row))
    gelato = next((row for row in rows if row["name"] == "gelato"), None)
    if gelato is not None:
        for suffix, key in zip(("vs_dssd", "vs_best"), GAIN_SERIES, strict=True):
            point = {}
            for name, column in (("gain", f"gain_tput_{suffix}"), ("gain_j", f"gain_j_{suffix}")):
                point[name], point[name + CI] = gelato[column], gelato[column + CI]
            sweep.setdefault(key, []).append((value, point))


#: the columns of a sweep CSV (means and 95 % CI half-widths over seeds; gains for the
#: ``vs dssd`` / ``vs best`` pseudo-agents)
SWEEP_COLUMNS = ("throughput_tps", "energy_per_token_j", "budget_ratio", "backlog_mean_j",
                 "gain", "gain_j")  # fmt: skip


def write_sweep(sweep: dict[str, list[tuple[float, dict[str, Any]]]], path: Path,
                swept: str) -> None:  # fmt: skip
    """The sweep as CSV rows: label, the swept value (column ``swept``), and each of
    :data:`SWEEP_COLUMNS` with its CI (empty where it does not apply)."""
    keys = [k for key in SWEEP_COLUMNS for k in (key, key + CI)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", swept, *keys])
        for label, points in sweep.items():
            for value, m in points:
                writer.writerow([label, value, *(m.get(k, "") for k in keys)])


def log_wandb(cfg: DictConfig, rows: list[dict[str, Any]], runs: list[AgentRun],
              out_dir: Path) -> None:  # fmt: skip
    """The table's means and CIs as run summary, the first seed's GELATO rounds, the figures."""
    if cfg.wandb.mode == "disabled":
        return
    import wandb

    seeds = "-".join(str(s) for s in cfg.seeds)
    name = cfg.wandb.name or f"{cfg.env.system}__evaluate__{seeds}__{int(time.time())}"
    run = wandb.init(
        project=cfg.wandb.project, entity=cfg.wandb.entity, name=name, mode=cfg.wandb.mode,
        dir=str(out_dir), config=OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
    )  # fmt: skip
    for row in rows:
        label = row["agent"]
        for key in ("throughput_tps", "throughput_tps" + CI):
            run.summary[f"charts/{label}/{key}"] = row[key]
        for key in ("energy_per_token_j", "energy_avg", "budget_ratio", "budget_violation",
                    "backlog_mean_j"):  # fmt: skip
            for name in (key, key + CI):
                if name in row:
                    run.summary[f"energy/{label}/{name}"] = row[name]
        for key in ("mean_accepted", "mean_planned_budget", "mean_drafted"):
            if key in row:
                run.summary[f"sd/{label}/{key}"] = row[key]
    gelato = next((r for r in runs if r.agent == "gelato"), None)
    if gelato is not None:
        rounds = gelato.rounds
        for k in range(len(rounds["budget"])):
            step = {"sd/planned_budget": rounds["budget"][k],
                    "sd/realized_gamma": rounds["n_drafted"][k],
                    "energy/queue_j": rounds["queue"][k]}  # fmt: skip
            run.log(step, step=k)
    keys = list(rows[0])
    run.log(
        {"charts/results": wandb.Table(columns=keys, data=[[r.get(k) for k in keys] for r in rows])}
    )
    for png in sorted((out_dir / "plots").glob("*.png")):
        run.log({f"charts/{png.stem}": wandb.Image(str(png))})
    run.finish()


@hydra.main(version_base="1.3", config_path="pkg://gelato_env.conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hydra_cfg = HydraConfig.get()
    job_log = Path(hydra_cfg.runtime.output_dir) / f"{hydra_cfg.job.name}.log"
    # what the job prints (tables, headline, bounds) also goes to Hydra's job log
    with job_log.open("a") as log_file, contextlib.redirect_stdout(_Tee(sys.stdout, log_file)):
        try:
            main_impl(cfg)
        except BaseException:
            remove_empty_run_dir()
            raise


class _Tee:
    """A text stream writing to several streams (stdout and the job log)."""

    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


if __name__ == "__main__":
    refuse_moved_overrides(sys.argv[1:])
    main()
