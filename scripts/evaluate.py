"""Evaluate GELATO against the baselines: results table (CSV + Markdown), plots, W&B (offline).

    python scripts/evaluate.py                                  # the default comparison
    python scripts/evaluate.py +experiment=paper_140ms          # a named experiment
    python scripts/evaluate.py -m env.budget_value=0.1,0.2,0.3  # a Hydra multirun sweep
    python scripts/evaluate.py +experiment=smoke env.trace_path=/path/to/micro/trace

Every agent plays the trace's held-out prompts (the hash split ``scripts/train.py`` holds out and
GELATO never calibrates on; ``eval_fraction``), each once. The headline compares GELATO with
``dssd`` (the paper's named reference) and, separately, with the strongest baseline that meets
the energy budget. Outputs land in Hydra's run directory: results.csv, results.md, plots/*.png.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from agents.evaluation import (
    AgentRun,
    check_lossless,
    headline,
    heldout_env_factory,
    markdown_table,
    results_table,
    run_agent,
    write_results,
)
from agents.plots import plot_sweep, plot_timeline, plot_v_tradeoff
from agents.registry import load_preset, make_agent
from gelato_env.conf.schema import check_composed, register
from gelato_env.config import EnvConfig
from gelato_env.env import GelatoEnv


def load_agent(name: str, overrides: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    preset = load_preset(name, overrides)
    return preset.name, preset.label, preset.params


def evaluate(cfg: DictConfig, env_kwargs: dict[str, Any], agents: list[str],
             n_episodes: int | None, agent_overrides: dict[str, Any],
             progress: bool) -> list[AgentRun]:  # fmt: skip
    make_env, held = heldout_env_factory(env_kwargs, float(cfg.eval_fraction))
    if n_episodes is None:  # every held-out prompt once
        n_episodes = len(held) if held is not None else make_env({}).backend.n_prompts

    def bar(total: int, desc: str) -> Any:
        return tqdm(total=total, desc=desc, unit="ep", leave=False)

    runs = []
    for agent_name in agents:
        name, label, params = load_agent(agent_name, agent_overrides)
        policy = make_agent(name, **params)
        runs.append(
            run_agent(policy, make_env, label=label, agent=name, n_episodes=n_episodes,
                      seed=int(cfg.seed), env_kwargs={}, progress=bar if progress else None)
        )  # fmt: skip
    return runs


register()  # the config schemas (gelato_env/conf/schema.py), before @hydra.main composes
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
    _check_int("seed", values["seed"], low=0)
    _check_episodes(values["n_episodes"], values["eval_fraction"])
    _check_int("sweep.n_episodes", values["sweep"]["n_episodes"], low=1)
    for name in ("agents", "sweep.agents"):
        agents = values[name] if name == "agents" else values["sweep"]["agents"]
        if not isinstance(agents, list) or not all(isinstance(a, str) for a in agents):
            raise ValueError(f"{name} must be a list of conf/agent names, got {agents!r}")
        if not agents:
            raise ValueError(f"{name} must not be empty")
    for name, flag in (("check_lossless", values["check_lossless"]),
                       ("progress", values["progress"]),
                       ("sweep.enabled", values["sweep"]["enabled"])):  # fmt: skip
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be true or false, got {flag!r}")
    if values["wandb"]["mode"] not in WANDB_MODES:
        raise ValueError(f"wandb.mode must be one of {list(WANDB_MODES)}, got "
                         f"{values['wandb']['mode']!r}")  # fmt: skip


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
    progress = bool(cfg.progress)

    # 1. the comparison
    n_episodes = None if cfg.n_episodes is None else int(cfg.n_episodes)
    runs = evaluate(cfg, env_kwargs, list(cfg.agents), n_episodes, overrides, progress)
    held = heldout_env_factory(env_kwargs, float(cfg.eval_fraction))[1]
    if cfg.check_lossless:
        check_lossless(runs, lossless_reference(env_kwargs, runs, held))
    rows = results_table(runs)
    write_results(rows, out_dir)
    bounds = gelato_bounds(cfg, env_kwargs, runs, overrides, held) if replay else {}
    lines = [f"- {key}: {value:.3f} tokens/s" for key, value in bounds.items()]
    lines += [f"- {line}" for line in headline(rows)]
    with (out_dir / "results.md").open("a") as f:
        f.write("\n" + "\n".join(lines) + "\n")
    print(markdown_table(rows))
    print("\n".join(lines))

    # 2. sweeps and plots
    plots = out_dir / "plots"
    plots.mkdir(exist_ok=True)
    for run in runs:
        if run.agent == "gelato":
            plot_timeline(run, plots / f"timeline_{run.label}.png")
    if cfg.sweep.enabled:
        run_sweeps(cfg, env_kwargs, overrides, plots)

    log_wandb(cfg, rows, runs, out_dir)
    print(f"results: {out_dir / 'results.md'}  plots: {plots}")
    return rows


def lossless_reference(env_kwargs: dict[str, Any], runs: list[AgentRun],
                       held: tuple[int, ...] | None = None) -> dict[int, list[int]]:  # fmt: skip
    """Target-only greedy output per env prompt: the trace's (replay; env prompt i is trace
    prompt ``held[i]``) or target_only's run (live)."""
    if env_kwargs.get("backend", "replay") == "replay":
        from gelato_env.traces import load_trace

        trace = load_trace(env_kwargs["trace_path"], verify=False)
        index = list(range(trace.n_prompts)) if held is None else list(held)
        return {i: trace.output_of(p).tolist() for i, p in enumerate(index)}
    target = next((r for r in runs if r.agent == "target_only"), None)
    if target is None:
        raise ValueError("check_lossless on a live backend needs target_only among the agents")
    return {p: list(out) for p, out in zip(target.prompts, target.outputs, strict=True)}


def gelato_bounds(cfg: DictConfig, env_kwargs: dict[str, Any], runs: list[AgentRun],
                  overrides: dict[str, Any],
                  held: tuple[int, ...] | None = None) -> dict[str, float]:  # fmt: skip
    """R_GELATO + B_0/V and the clairvoyant optimum on this evaluation's trace and channel draws."""
    from agents.bounds import bounds_from_runs
    from agents.gelato import DEFAULT_V
    from gelato_env.system import EnergyBudget

    env = GelatoEnv(**env_kwargs)
    v = None
    if "gelato" in cfg.agents:
        v = load_agent("gelato", overrides)[2].get("v")
        v = DEFAULT_V[env.config.budget_mode] if v is None else float(v)
    bounds = bounds_from_runs(
        runs, v=v, system=env.params,
        budget=EnergyBudget(env.config.budget_mode, env.config.budget_value),
        trace=env.backend.trace, max_new_tokens=env.backend.max_new_tokens,
        prompt_indices=held,
    )  # fmt: skip
    env.close()
    return bounds


def run_sweeps(cfg: DictConfig, env_kwargs: dict[str, Any], overrides: dict[str, Any],
               plots: Path) -> None:  # fmt: skip
    """Budget, bandwidth and V sweeps (few episodes each) and their plots: throughput per agent
    and GELATO's gains vs dssd and vs the strongest budget-meeting baseline."""
    n_sweep = int(cfg.sweep.n_episodes)
    agents = list(cfg.sweep.agents)
    by_budget: dict[str, list[tuple[float, dict[str, float]]]] = {}
    for value in cfg.sweep.budget_values:
        kw = {**env_kwargs, "budget_value": float(value)}
        sweep_point(evaluate(cfg, kw, agents, n_sweep, overrides, False), float(value), by_budget)
    by_bandwidth: dict[str, list[tuple[float, dict[str, float]]]] = {}
    for value in cfg.sweep.bandwidths_hz:
        sys_over = {**env_kwargs.get("system_overrides", {}), "bandwidth_hz": float(value)}
        kw = {**env_kwargs, "system_overrides": sys_over}
        runs = evaluate(cfg, kw, agents, n_sweep, overrides, False)
        sweep_point(runs, float(value), by_bandwidth)
    gains = ("gain vs dssd", "gain vs best")
    plot_sweep({k: v for k, v in by_budget.items() if k in gains}, "gain", "energy budget",
               "GELATO throughput gain", plots / "gain_vs_budget.png")  # fmt: skip
    plot_sweep({k: v for k, v in by_bandwidth.items() if k in gains}, "gain",
               "uplink bandwidth (Hz)", "GELATO throughput gain",
               plots / "gain_vs_bandwidth.png", logx=True)  # fmt: skip
    write_sweep(by_budget, plots / "sweep_budget.csv")
    write_sweep(by_bandwidth, plots / "sweep_bandwidth.csv")
    by_budget = {k: v for k, v in by_budget.items() if k not in gains}
    by_bandwidth = {k: v for k, v in by_bandwidth.items() if k not in gains}
    by_v: list[tuple[float, dict[str, float]]] = []
    for value in cfg.sweep.v_values:
        over = {**overrides, "gelato": {**overrides.get("gelato", {}), "v": float(value)}}
        (run,) = evaluate(cfg, env_kwargs, ["gelato"], n_sweep, over, False)
        by_v.append((float(value), run.metrics()))
    plot_sweep(by_budget, "throughput_tps", "energy budget (J/round)", "throughput (tokens/s)",
               plots / "throughput_vs_budget.png")  # fmt: skip
    plot_sweep(by_bandwidth, "throughput_tps", "uplink bandwidth (Hz)",
               "throughput (tokens/s)", plots / "bandwidth_sweep.png", logx=True)  # fmt: skip
    plot_v_tradeoff(by_v, plots / "v_tradeoff.png")


def sweep_point(runs: list[AgentRun], value: float,
                sweep: dict[str, list[tuple[float, dict[str, float]]]]) -> None:  # fmt: skip
    """Add one sweep point: each run's metrics, and GELATO's two gains as pseudo-agents."""
    rows = results_table(runs)
    for run in runs:
        sweep.setdefault(run.label, []).append((value, run.metrics()))
    gelato = next((row for row in rows if row["agent"] == "gelato"), None)
    if gelato is not None:
        for suffix, key in (("vs_dssd", "gain vs dssd"), ("vs_best", "gain vs best")):
            sweep.setdefault(key, []).append(
                (value, {"gain": gelato[f"gain_tput_{suffix}"],
                         "gain_j": gelato[f"gain_j_{suffix}"]}))  # fmt: skip


def write_sweep(sweep: dict[str, list[tuple[float, dict[str, float]]]], path: Path) -> None:
    """The sweep as CSV rows: label, value, throughput (or gain), energy per token (or gain)."""
    with path.open("w") as f:
        f.write("label,value,throughput_tps_or_gain,energy_per_token_j_or_gain\n")
        for label, points in sweep.items():
            for value, m in points:
                a = m.get("throughput_tps", m.get("gain"))
                b = m.get("energy_per_token_j", m.get("gain_j"))
                f.write(f"{label},{value},{a},{b}\n")


def log_wandb(cfg: DictConfig, rows: list[dict[str, Any]], runs: list[AgentRun],
              out_dir: Path) -> None:  # fmt: skip
    if cfg.wandb.mode == "disabled":
        return
    import wandb

    name = cfg.wandb.name or f"{cfg.env.system}__evaluate__{cfg.seed}__{int(time.time())}"
    run = wandb.init(
        project=cfg.wandb.project, entity=cfg.wandb.entity, name=name, mode=cfg.wandb.mode,
        dir=str(out_dir), config=OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
    )  # fmt: skip
    for row in rows:
        label = row["agent"]
        run.summary[f"charts/{label}/throughput_tps"] = row["throughput_tps"]
        run.summary[f"energy/{label}/energy_per_token_j"] = row["energy_per_token_j"]
        for key in ("energy_avg", "budget_violation", "backlog_mean_j"):
            if key in row:
                run.summary[f"energy/{label}/{key}"] = row[key]
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
    try:
        main_impl(cfg)
    except BaseException:
        remove_empty_run_dir()
        raise


if __name__ == "__main__":
    main()
