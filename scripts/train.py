"""Train a learned scheduler (SB3 PPO/DQN/A2C) on replayed SD rounds; compare it with GELATO.

    python scripts/train.py                              # PPO, throughput reward, default trace
    python scripts/train.py algo=dqn reward=lagrangian seed=1
    python scripts/train.py +experiment=train_ppo_paper       # the named paper-setting run
    python scripts/train.py +experiment=smoke_train env.trace_path=/path/to/micro/trace

The run directory (``hydra.run.dir``, default ``runs/<env>__<algo>-<reward>__s<seed>``) holds
run_config.json (the resolved config the run belongs to), checkpoints/, metrics.jsonl +
metrics.csv (the logged metrics), the final model.zip, vecnormalize.pkl, agent.json (load it
with ``agents=[learned] +agent_overrides.learned.path=<run dir>`` in scripts/evaluate.py),
results.md/.csv, summary.json, plots/ and train.log (this script's log).

Resume: rerunning the same command (same run directory, same config) continues from the last
checkpoint -- model, replay buffer, VecNormalize statistics, timestep count, Lagrange
multiplier, best evaluation return, evaluation schedule and the W&B run id (``resume: auto``;
``resume: true`` requires a checkpoint, ``resume: false`` refuses to reuse a run directory that
has one). Metrics rows logged after that checkpoint (a kill at any moment) are dropped first, so
no step is logged twice. A changed config is refused with the list of differing fields
(``on_config_change=new_run`` starts ``<run dir>__cfg<hash>`` instead); only the fields in
``agents.run_dir.RESUME_FREE_FIELDS`` may change (``train.total_timesteps`` extends a run). A
finished run reports "already complete" with its results and exits 0. SIGINT/SIGTERM stop
training (on-policy: after the rollout in progress and its update), write a checkpoint and exit
with 128 + signal number.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from agents.agent_card import AGENT_CARD, MODEL_FILE, VECNORMALIZE_FILE, AgentCard
from agents.callbacks import (
    HeldOutEvaluation,
    LagrangeMultiplier,
    ResumableCheckpoint,
    SDMetrics,
    StopTraining,
)
from agents.checkpoints import RunState, latest_checkpoint
from agents.comparison import compare_with_agents
from agents.metrics_log import JsonlWriter, WandbWriter, jsonl_to_csv, truncate_metrics
from agents.prompt_split import split_prompts
from agents.run_dir import SUMMARY, RunRecord, claim_run_dir
from agents.train_config import OFF_POLICY, AlgoConfig, RewardConfig, TrainConfig, algorithm_class
from agents.train_envs import make_eval_env, make_training_env, resolve_vec_env
from gelato_env.conf.schema import check_composed, refuse_moved_overrides
from gelato_env.config import EnvConfig
from gelato_env.storage import write_bytes_atomic

EXIT_CODE: int = 0  # set by main_impl: 128 + signal number after a signal-interrupted run
log = logging.getLogger("gelato.train")


def to_dataclasses(cfg: DictConfig) -> tuple[EnvConfig, AlgoConfig, RewardConfig, TrainConfig]:
    env = OmegaConf.to_container(cfg.env, resolve=True)
    algo = OmegaConf.to_container(cfg.algo, resolve=True)
    reward = OmegaConf.to_container(cfg.reward, resolve=True)
    train = OmegaConf.to_container(cfg.train, resolve=True)
    assert isinstance(env, dict)
    assert isinstance(algo, dict)
    assert isinstance(reward, dict)
    assert isinstance(train, dict)
    env["reward_mode"] = reward["name"]  # the env computes throughput / dpp / lagrangian rewards
    if env.get("trace_path") is None:
        from gelato_env.traces.default import default_trace  # shipped in the package

        env["trace_path"] = str(default_trace().path)
    return (
        EnvConfig.from_dict(env),
        AlgoConfig(**algo),  # type: ignore[arg-type]
        RewardConfig(**reward),  # type: ignore[arg-type]
        TrainConfig(seed=int(cfg.seed), **train),  # type: ignore[arg-type]
    )


def find_resume_point(run_dir: Path, resume: str | bool) -> Any:
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    if resume is True and ckpt is None:
        raise ValueError(f"resume=true but {run_dir / 'checkpoints'} holds no checkpoint")
    if resume is False and ckpt is not None:
        raise ValueError(
            f"{run_dir} already holds a checkpoint at {ckpt.num_timesteps} steps; pass "
            f"resume=true (or auto) to continue it, or a new hydra.run.dir"
        )
    return ckpt


def complete_summary(run_dir: Path, cfg: DictConfig) -> dict[str, Any] | None:
    """The run's summary when it needs no more work: trained far enough, compared the same way."""
    path = run_dir / SUMMARY
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    compare = OmegaConf.to_container(cfg.compare, resolve=True)
    if summary["num_timesteps"] < int(cfg.train.total_timesteps) or summary["compare"] != compare:
        return None
    return dict(summary)


def log_to_run_dir(run_dir: Path) -> None:
    """Also write this process's log to ``run_dir/train.log`` (a run moved by new_run)."""
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)


def main_impl(cfg: DictConfig) -> dict[str, Any]:  # noqa: C901 (linear, top to bottom)
    global EXIT_CODE
    EXIT_CODE = 0
    requested_dir = Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir)
    env_cfg, algo_cfg, reward_cfg, train_cfg = to_dataclasses(cfg)
    if algo_cfg.name == "dqn" and env_cfg.action_mode == "budget_threshold":
        raise ValueError("algo dqn needs a Discrete action space; action_mode 'budget_threshold' "
                         "is MultiDiscrete (use ppo or a2c)")  # fmt: skip
    from gelato_env.traces.store import read_header

    header = read_header(env_cfg.trace_path)  # type: ignore[arg-type]
    seed = train_cfg.seed

    # 0. the run directory: the same config resumes; a changed one is refused (or moves on)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    config = {str(key): value for key, value in resolved.items()}
    name_prefix = f"{cfg.env_name}__{algo_cfg.name}-{reward_cfg.name}__{seed}"
    fresh = RunRecord.new(config, header.checksum, name_prefix)
    run_dir, record, how = claim_run_dir(requested_dir, fresh, str(cfg.on_config_change))
    if how == "new_run":
        log_to_run_dir(run_dir)
        log.info("config differs from the run in %s: starting %s", requested_dir, run_dir)
    elif how == "replaced":
        log.info("%s held no checkpoint: replacing its config", run_dir)
    ckpt = find_resume_point(run_dir, cfg.resume)
    done = complete_summary(run_dir, cfg)
    if done is not None:
        results = run_dir / "results.md"
        log.info("run already complete: %d steps in %s (train.total_timesteps=%d)%s",
                 done["num_timesteps"], run_dir, train_cfg.total_timesteps,
                 ":\n" + results.read_text() if results.is_file() else "")  # fmt: skip
        return {**done, "already_complete": True}
    state = ckpt.run_state() if ckpt is not None else None
    jsonl = run_dir / "metrics.jsonl"
    dropped = truncate_metrics(jsonl, ckpt.num_timesteps if ckpt is not None else -1)
    if dropped:
        log.info("metrics.jsonl: dropped %d row(s) logged after the checkpoint (%d steps)",
                 dropped, ckpt.num_timesteps if ckpt is not None else 0)  # fmt: skip

    # 1. held-out prompts: a disjoint split of the trace's prompts by prompt-id hash
    split = split_prompts(header.prompt_ids, train_cfg.eval_fraction)
    log.info("prompts: %d train / %d held out (%s)", len(split.train), len(split.eval),
             env_cfg.trace_path)  # fmt: skip

    # 2. vectorized envs: gelato's vector env for a replay env (vec_env=auto), else SB3's
    #    Dummy/SubprocVecEnv (+ VecNormalize, restored on resume)
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import VecNormalize

    set_random_seed(seed)
    lagrangian = reward_cfg.name == "lagrangian"
    multiplier = state.multiplier if state is not None else reward_cfg.lambda_init
    env_seed = seed + (state.num_timesteps if state is not None else 0)  # fresh draws on resume
    vec_env = resolve_vec_env(train_cfg.vec_env, env_cfg)
    train_env = make_training_env(
        env_cfg, split.train, n_envs=train_cfg.n_envs, kind=vec_env, seed=env_seed,
        lagrangian=lagrangian, multiplier=multiplier,
    )  # fmt: skip
    log.info("training envs: %d x %s (vec_env=%s)", train_cfg.n_envs, vec_env, train_cfg.vec_env)
    eval_cfg = EnvConfig.from_dict({**env_cfg.to_dict(), "reward_mode": "throughput"})
    eval_env = make_eval_env(eval_cfg, split.eval, like=vec_env, seed=seed + 10_000)
    if train_cfg.vec_normalize:
        if ckpt is not None and ckpt.vecnormalize is not None:
            train_env = VecNormalize.load(str(ckpt.vecnormalize), train_env)
        else:
            train_env = VecNormalize(train_env, norm_obs=train_cfg.normalize_obs,
                                     norm_reward=train_cfg.normalize_reward, gamma=float(
                                         algo_cfg.kwargs.get("gamma", 0.99)))  # fmt: skip
        eval_env = VecNormalize(eval_env, training=False, norm_obs=train_cfg.normalize_obs,
                                norm_reward=False)  # fmt: skip

    # 3. the model: new, or the checkpoint's (with its replay buffer)
    algo_cls = algorithm_class(algo_cfg.name)
    if ckpt is not None:
        model = algo_cls.load(ckpt.model, env=train_env, device=train_cfg.device)
        if ckpt.replay_buffer is not None:
            model.load_replay_buffer(ckpt.replay_buffer)
        log.info("resuming from %s at %d steps", ckpt.model, model.num_timesteps)
    else:
        model = algo_cls(algo_cfg.policy, train_env, seed=seed, device=train_cfg.device,
                         verbose=0, **algo_cfg.kwargs)  # fmt: skip
    start_steps = int(model.num_timesteps)
    remaining = train_cfg.total_timesteps - start_steps
    if remaining > 0:
        (run_dir / SUMMARY).unlink(missing_ok=True)  # training again: the old summary is stale

    # 4. W&B (offline by default; one run id per run directory) and the local metrics
    wandb_run = None
    if cfg.wandb.mode != "disabled":
        import wandb

        wandb_run = wandb.init(
            project=cfg.wandb.project, entity=cfg.wandb.entity, name=record.run_name,
            id=record.wandb_id, resume="allow", mode=cfg.wandb.mode, dir=str(run_dir),
            config=config,
        )  # fmt: skip
    from stable_baselines3.common.logger import HumanOutputFormat, Logger

    outputs: list[Any] = [JsonlWriter(jsonl)]
    if wandb_run is not None:
        outputs.append(WandbWriter(wandb_run))
    if cfg.verbose:
        outputs.append(HumanOutputFormat(sys.stdout))
    model.set_logger(Logger(str(run_dir), outputs))
    for key, value in (state.pending_log if state is not None else {}).items():
        model.logger.record(key, value)  # the last update's losses, into the next row

    # 5. callbacks: metrics, held-out evaluation, checkpoints, stop, Lagrange multiplier
    lagrange = LagrangeMultiplier(reward_cfg.lambda_lr, multiplier) if lagrangian else None
    best_before = state.best_mean_reward if state is not None else float("-inf")
    last_eval_before = start_steps
    if state is not None and state.last_eval_step is not None:
        last_eval_before = state.last_eval_step
    evaluator = None
    if train_cfg.eval_freq > 0:
        evaluator = HeldOutEvaluation(
            eval_env, eval_freq=train_cfg.eval_freq, seed=seed + 10_000,
            last_eval_step=last_eval_before, n_eval_episodes=train_cfg.n_eval_episodes,
            best_model_save_path=str(run_dir / "best"), log_path=str(run_dir / "eval"),
        )  # fmt: skip
        evaluator.best_mean_reward = best_before  # a resumed run keeps its best model
        evaluator.restore_log(start_steps)
    segments = list(state.segments) if state is not None else []
    stopper = StopTraining(stop_at=cfg.debug.stop_after_timesteps)
    checkpointer: ResumableCheckpoint

    def run_state(n: int) -> RunState:
        last_eval, best = last_eval_before, best_before
        if evaluator is not None:
            last_eval, best = evaluator.state_at(n, best_before, last_eval_before)
        return RunState(
            num_timesteps=n, wandb_id=wandb_run.id if wandb_run is not None else "",
            run_name=record.run_name, multiplier=lagrange.multiplier if lagrange else 0.0,
            best_mean_reward=best, segments=(*segments, (start_steps, n)),
            interrupted=stopper.stopped, last_eval_step=last_eval,
            pending_log=checkpointer.pending_log,
        )  # fmt: skip

    def log_artifact(saved: Any) -> None:
        if wandb_run is None or not cfg.wandb.log_checkpoints:
            return
        import wandb

        artifact = wandb.Artifact(f"model-{wandb_run.id}", type="model",
                                  metadata={"num_timesteps": saved.num_timesteps})  # fmt: skip
        artifact.add_file(str(saved.model), name=MODEL_FILE)
        if saved.vecnormalize is not None:
            artifact.add_file(str(saved.vecnormalize), name=VECNORMALIZE_FILE)
        wandb_run.log_artifact(artifact, aliases=["latest", f"step-{saved.num_timesteps}"])

    checkpointer = ResumableCheckpoint(
        train_cfg.checkpoint_freq, run_dir / "checkpoints", run_state,
        keep=train_cfg.keep_checkpoints, save_replay_buffer=algo_cfg.name in OFF_POLICY,
        save_vecnormalize=train_cfg.vec_normalize, on_save=log_artifact,
    )  # fmt: skip
    # order matters: an evaluation at step S belongs to the checkpoint taken at S
    callbacks: list[Any] = [SDMetrics(), *([evaluator] if evaluator else []), checkpointer,
                            stopper, *([lagrange] if lagrange else [])]  # fmt: skip

    # 6. train (SIGINT/SIGTERM end it cleanly; on-policy after the rollout in progress)
    if remaining > 0:
        from stable_baselines3.common.callbacks import CallbackList

        stopper.install()
        try:
            model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=False,
                        log_interval=int(cfg.log_interval),
                        progress_bar=bool(cfg.progress_bar))  # fmt: skip
        finally:
            stopper.uninstall()
        saved = checkpointer.save(rollback=stopper.stopped)  # resumable either way
    else:
        log.info("trained %d of %d steps already: no training", start_steps,
                 train_cfg.total_timesteps)  # fmt: skip
    model.logger.close()
    if stopper.stopped:
        truncate_metrics(jsonl, saved.num_timesteps)  # rows past the checkpoint: logged again
        jsonl_to_csv(jsonl, run_dir / "metrics.csv")
        log.info("interrupted; checkpoint at %d steps; rerun the same command to resume",
                 saved.num_timesteps)  # fmt: skip
        if wandb_run is not None:
            wandb_run.finish(exit_code=1)
        EXIT_CODE = 128 + stopper.signum if stopper.signum is not None else 0
        return {"num_timesteps": saved.num_timesteps, "interrupted": True}
    jsonl_to_csv(jsonl, run_dir / "metrics.csv")

    # 7. the trained agent, loadable by path in the evaluation harness
    model.save(run_dir / MODEL_FILE)
    if train_cfg.vec_normalize:
        model.get_vec_normalize_env().save(str(run_dir / VECNORMALIZE_FILE))  # type: ignore[union-attr]
    reward_dict = OmegaConf.to_container(cfg.reward, resolve=True)
    assert isinstance(reward_dict, dict)
    card = AgentCard(
        algo=algo_cfg.name,
        env=env_cfg.to_dict(),
        reward={str(k): v for k, v in reward_dict.items()},
        split=split.to_dict(),
        num_timesteps=int(model.num_timesteps),
        seed=seed,
    )
    write_bytes_atomic(run_dir / AGENT_CARD, card.to_json().encode())
    train_env.close()
    eval_env.close()

    # 8. learned vs GELATO (and baselines) on the held-out prompts, with GELATO's bounds
    summary: dict[str, Any] = {"num_timesteps": int(model.num_timesteps), "interrupted": False}
    if cfg.compare.enabled:
        agents = [load_agent_config(name) for name in cfg.compare.agents]
        result = compare_with_agents(
            run_dir, eval_cfg, split.eval, agents, n_episodes=int(cfg.compare.n_episodes),
            seed=seed + 20_000, clairvoyant=bool(cfg.compare.clairvoyant),
        )  # fmt: skip
        log.info("learned vs GELATO on held-out prompts:\n%s", result.markdown)
        summary["results"] = result.rows
        summary["bounds"] = result.bounds
        if wandb_run is not None:
            for row in result.rows:
                wandb_run.summary[f"charts/{row['agent']}/throughput_tps"] = row["throughput_tps"]
                wandb_run.summary[f"energy/{row['agent']}/energy_per_token_j"] = row[
                    "energy_per_token_j"
                ]
            for key, value in result.bounds.items():
                wandb_run.summary[f"charts/bound/{key}"] = value
            import wandb

            wandb_run.log({"charts/learned_vs_gelato": wandb.Image(str(result.plot))})
    if wandb_run is not None:
        wandb_run.finish()
    summary["compare"] = OmegaConf.to_container(cfg.compare, resolve=True)
    write_bytes_atomic(run_dir / SUMMARY, json.dumps(summary, indent=2, default=str).encode())
    log.info("run dir: %s", run_dir)
    return summary


def load_agent_config(name: str) -> tuple[str, str, dict[str, Any]]:
    from agents.registry import load_preset

    preset = load_preset(name)
    return preset.name, preset.label, preset.params


@hydra.main(version_base="1.3", config_path="pkg://gelato_env.conf", config_name="train")
def main(cfg: DictConfig) -> None:
    check_composed(cfg)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main_impl(cfg)


if __name__ == "__main__":
    refuse_moved_overrides(sys.argv[1:])
    main()
    sys.exit(EXIT_CODE)
