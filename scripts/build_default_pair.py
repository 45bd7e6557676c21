"""Build (or load from cache) gelato's offline default draft/target pair (DESIGN.md §8).

    python scripts/build_default_pair.py                       # default pair, default cache
    python scripts/build_default_pair.py cache_dir=/tmp/gelato pair.seed=1
    python scripts/build_default_pair.py rebuild=true

Interrupt it at any time: rerunning the same command resumes from the last checkpoint.
Prints sizes, parameter counts, build time, cache size and the greedy accepted length at the
manifest's gamma.
"""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from gelato_env.sd import corpus
from gelato_env.sd.default_pair import (
    DefaultPairConfig,
    greedy_acceptance,
    load_default_pair,
    pair_dir,
    read_manifest,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def dir_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


@hydra.main(config_path="../conf/model", config_name="default", version_base="1.3")
def main(cfg: DictConfig) -> None:
    config = DefaultPairConfig(**OmegaConf.to_container(cfg.pair, resolve=True))  # type: ignore[arg-type]
    pair = load_default_pair(cfg.cache_dir, config=config, rebuild=cfg.rebuild,
                             progress=cfg.progress)  # fmt: skip
    out = pair_dir(cfg.cache_dir, config)
    manifest = read_manifest(out)
    metrics = dict(manifest["metrics"])
    if cfg.measure_prompts > 0 and cfg.measure_prompts != config.eval_prompts:
        budget = config.context_len - config.eval_new_tokens - config.eval_gamma - 1
        prompts = [
            pair.tokenizer(p.text, add_special_tokens=False)["input_ids"][-budget:]
            for p in corpus.held_out_prompts(cfg.measure_prompts)
        ]
        metrics.update(greedy_acceptance(pair.draft, pair.target, prompts,
                                         gamma=config.eval_gamma,
                                         max_new_tokens=config.eval_new_tokens))  # fmt: skip
    print(f"default pair      {out}")
    print(f"ids               {pair.draft_id}  {pair.target_id}")
    print(f"vocab             {len(pair.tokenizer)}  eos={pair.eos_token_id}")
    print(f"target            {config.target_layers}x{config.target_width}  "
          f"{manifest['n_params']['target']:,} params")  # fmt: skip
    print(f"draft             {config.draft_layers}x{config.draft_width}  "
          f"{manifest['n_params']['draft']:,} params")  # fmt: skip
    print(f"train tokens      {manifest['n_train_tokens']:,}  "
          f"(Python {manifest['corpus']['python_version']} stdlib)")  # fmt: skip
    print(f"build time        {manifest['build_time_s']:.0f} s  ({manifest['built_at']})")
    print(f"cache size        {dir_size_mb(out):.1f} MB")
    print(f"held-out loss     target {metrics['target_held_out_loss']:.3f}  "
          f"draft {metrics['draft_held_out_loss']:.3f} nats/token")  # fmt: skip
    print(f"greedy gamma={config.eval_gamma}    "
          f"accepted/round {metrics['accepted_per_round']:.3f}  "
          f"tokens/round {metrics['tokens_per_round']:.3f}  "
          f"({int(metrics['n_rounds'])} rounds)")  # fmt: skip


if __name__ == "__main__":
    main()
