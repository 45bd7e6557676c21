"""Train a learned scheduler (SB3 PPO/DQN/A2C) on replayed SD rounds; compare it with GELATO.

    python scripts/train.py                              # PPO, throughput reward, default trace
    python scripts/train.py algo=dqn reward=lagrangian seed=1
    python scripts/train.py +experiment=train_ppo_paper       # the named paper-setting run
    python scripts/train.py +experiment=smoke_train env.trace_path=/path/to/micro/trace

The run directory (``hydra.run.dir``, default ``runs/<env>__<algo>-<reward>__s<seed>``) holds
checkpoints/, metrics.jsonl + metrics.csv (the logged metrics), the final model.zip,
vecnormalize.pkl, agent.json (load it with ``agents=[learned]
+agent_overrides.learned.path=<run dir>`` in scripts/evaluate.py), results.md/.csv and plots/.

Resume: rerunning the same command (same run directory) continues from the last checkpoint --
model, replay buffer, VecNormalize statistics, timestep count, Lagrange multiplier, best
evaluation return and the W&B run id (``resume: auto``; ``resume: true`` requires a
checkpoint, ``resume: false`` refuses to reuse a run directory that has one). SIGINT/SIGTERM
stop training after the current step, write a checkpoint and exit with 128 + signal number.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from agents.callbacks import (
    JsonlWriter,
    LagrangeMultiplier,
    ResumableCheckpoint,
    SDMetrics,
    StopTraining,
    WandbWriter,
    jsonl_to_csv,
)
from agents.learned import MODEL_FILE, VECNORMALIZE_FILE, compare_with_agents
from agents.training import (
    AGENT_CARD,
    OFF_POLICY,
    AgentCard,
    AlgoConfig,
    RewardConfig,
    RunState,
    TrainConfig,
    algorithm_class,
    env_factory,
    latest_checkpoint,
    make_vec_env,
    split_prompts,
    write_text_atomic,
)
from gelato_env.config import EnvConfig

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
EXIT_CODE: int = 0  # set by main_impl: 128 + signal number after a signal-interrupted run


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
        from gelato_env.traces.default import default_trace  # built on first use (minutes)

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


def main_impl(cfg: DictConfig) -> dict[str, Any]:  # noqa: C901 (linear, top to bottom)
    global EXIT_CODE
    run_dir = Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir)
    env_cfg, algo_cfg, reward_cfg, train_cfg = to_dataclasses(cfg)
    if algo_cfg.name == "dqn" and env_cfg.action_mode == "budget_threshold":
        raise ValueError("algo dqn needs a Discrete action space; action_mode 'budget_threshold' "
                         "is MultiDiscrete (use ppo or a2c)")  # fmt: skip
    ckpt = find_resume_point(run_dir, cfg.resume)
    state = ckpt.run_state() if ckpt is not None else None

    # 1. held-out prompts: a disjoint split of the trace's prompts by prompt-id hash
    from gelato_env.traces.store import read_header

    header = read_header(env_cfg.trace_path)  # type: ignore[arg-type]
    split = split_prompts(header.prompt_ids, train_cfg.eval_fraction)
    print(f"prompts: {len(split.train)} train / {len(split.eval)} held out ({env_cfg.trace_path})")

    # 2. vectorized envs (+ VecNormalize, restored on resume)
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import VecNormalize

    seed = train_cfg.seed
    set_random_seed(seed)
    lagrangian = reward_cfg.name == "lagrangian"
    multiplier = state.multiplier if state is not None else reward_cfg.lambda_init
    env_seed = seed + (state.num_timesteps if state is not None else 0)  # fresh draws on resume
    train_env = make_vec_env(
        env_factory(env_cfg, split.train, lagrangian=lagrangian, multiplier=multiplier),
        train_cfg.n_envs, train_cfg.vec_env, env_seed,
    )  # fmt: skip
    eval_cfg = EnvConfig.from_dict({**env_cfg.to_dict(), "reward_mode": "throughput"})
    eval_env = make_vec_env(env_factory(eval_cfg, split.eval), 1, "dummy", seed + 10_000)
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
        print(f"resuming from {ckpt.model} at {model.num_timesteps} steps")
    else:
        model = algo_cls(algo_cfg.policy, train_env, seed=seed, device=train_cfg.device,
                         verbose=0, **algo_cfg.kwargs)  # fmt: skip
    start_steps = int(model.num_timesteps)

    # 4. W&B (offline by default) and the local metrics, through SB3's logger
    run_name = state.run_name if state is not None else (
        f"{cfg.env_name}__{algo_cfg.name}-{reward_cfg.name}__{seed}__{int(time.time())}"
    )  # fmt: skip
    wandb_run = None
    if cfg.wandb.mode != "disabled":
        import wandb

        wandb_run = wandb.init(
            project=cfg.wandb.project, entity=cfg.wandb.entity, name=run_name,
            id=state.wandb_id if state is not None and state.wandb_id else None,
            resume="allow", mode=cfg.wandb.mode, dir=str(run_dir),
            config=OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
        )  # fmt: skip
    from stable_baselines3.common.logger import HumanOutputFormat, Logger

    outputs: list[Any] = [JsonlWriter(run_dir / "metrics.jsonl")]
    if wandb_run is not None:
        outputs.append(WandbWriter(wandb_run))
    if cfg.verbose:
        outputs.append(HumanOutputFormat(sys.stdout))
    model.set_logger(Logger(str(run_dir), outputs))

    # 5. callbacks: metrics, Lagrange multiplier, held-out evaluation, checkpoints, stop
    from stable_baselines3.common.callbacks import CallbackList, EvalCallback

    lagrange = LagrangeMultiplier(reward_cfg.lambda_lr, multiplier) if lagrangian else None
    per_env = train_cfg.n_envs  # SB3 callback frequencies count vectorized steps
    evaluator = EvalCallback(
        eval_env, n_eval_episodes=train_cfg.n_eval_episodes,
        eval_freq=max(1, train_cfg.eval_freq // per_env),
        best_model_save_path=str(run_dir / "best"), log_path=str(run_dir / "eval"),
        deterministic=True, verbose=0,
    )  # fmt: skip
    if state is not None:  # a resumed run keeps its best model unless it is beaten
        evaluator.best_mean_reward = state.best_mean_reward
    segments = list(state.segments) if state is not None else []
    stopper = StopTraining(stop_at=cfg.debug.stop_after_timesteps)

    def run_state(n: int) -> RunState:
        return RunState(
            num_timesteps=n, wandb_id=wandb_run.id if wandb_run is not None else "",
            run_name=run_name, multiplier=lagrange.multiplier if lagrange else 0.0,
            best_mean_reward=float(evaluator.best_mean_reward),
            segments=(*segments, (start_steps, n)), interrupted=stopper.stopped,
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
        max(1, train_cfg.checkpoint_freq // per_env), run_dir / "checkpoints", run_state,
        keep=train_cfg.keep_checkpoints, save_replay_buffer=algo_cfg.name in OFF_POLICY,
        save_vecnormalize=train_cfg.vec_normalize, on_save=log_artifact,
    )  # fmt: skip
    callbacks: list[Any] = [SDMetrics(), checkpointer, stopper]
    callbacks += [lagrange] if lagrange else []
    callbacks += [evaluator] if train_cfg.eval_freq > 0 else []

    # 6. train (SIGINT/SIGTERM end it cleanly after the current step)
    remaining = train_cfg.total_timesteps - start_steps
    if remaining > 0:
        stopper.install()
        try:
            model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=False,
                        log_interval=int(cfg.log_interval), progress_bar=False)  # fmt: skip
        finally:
            stopper.uninstall()
    checkpointer.save()  # the final (or interrupted) state, resumable either way
    jsonl_to_csv(run_dir / "metrics.jsonl", run_dir / "metrics.csv")
    if stopper.stopped:
        print(f"interrupted at {model.num_timesteps} steps; rerun the same command to resume")
        if wandb_run is not None:
            wandb_run.finish(exit_code=1)
        EXIT_CODE = 128 + stopper.signum if stopper.signum is not None else 0
        return {"num_timesteps": model.num_timesteps, "interrupted": True}

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
    write_text_atomic(run_dir / AGENT_CARD, card.to_json())
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
        print(result.markdown)
        summary["results"] = result.rows
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
    print(f"run dir: {run_dir}")
    return summary


def load_agent_config(name: str) -> tuple[str, str, dict[str, Any]]:
    from agents.registry import load_preset

    preset = load_preset(name)
    return preset.name, preset.label, preset.params


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main_impl(cfg)


if __name__ == "__main__":
    main()
    sys.exit(EXIT_CODE)
