"""Record a trace of a draft/target pair on a prompt set (docs/design.md §6).

    python scripts/record_traces.py         # Qwen2.5-Coder 0.5B -> 1.5B, HumanEval (shipped trace)
    python scripts/record_traces.py prompts=jsonl prompts.path=p.jsonl out_dir=traces/mine
    python scripts/record_traces.py pair=... pair.kind=hf pair.draft=A pair.target=B prompts=gsm8k
    python scripts/record_traces.py pair.kind=micro_synthetic prompts.n=2 record.max_new_tokens=8 \
        out_dir=/tmp/smoke                                            # SYNTHETIC smoke run

Rerunning the same command resumes an interrupted recording; a longer prompt list appends.
"""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from gelato_env.sd.models import ModelPair
from gelato_env.traces.fit import fit_alpha_from_trace
from gelato_env.traces.prompts import (
    PromptTokens,
    gsm8k_prompts,
    humaneval_prompts,
    load_jsonl_prompts,
    tokenize_prompts,
)
from gelato_env.traces.recorder import RecordConfig, record_trace
from gelato_env.traces.summary import summarize

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def micro_synthetic_pair() -> ModelPair:
    """Random-init micro GPT-2 draft/target (vocab 64): SYNTHETIC statistics, for smoke runs."""
    from gelato_env.sd.synthetic import synthetic_pair

    return synthetic_pair(ids=("micro-synthetic-draft", "micro-synthetic-target"))


def load_models(pair_cfg: DictConfig) -> ModelPair:
    if pair_cfg.kind == "qwen":
        from gelato_env.sd.qwen_pair import load_qwen_pair

        return load_qwen_pair(pair_cfg.dtype or "float32", pair_cfg.cache_dir, pair_cfg.device)
    if pair_cfg.kind == "hf":
        from gelato_env.sd.models import load_pair

        if not pair_cfg.draft or not pair_cfg.target:
            raise ValueError("pair.kind=hf needs pair.draft and pair.target")
        return load_pair(pair_cfg.draft, pair_cfg.target, device=pair_cfg.device,
                         dtype=pair_cfg.dtype)  # fmt: skip
    if pair_cfg.kind == "micro_synthetic":
        return micro_synthetic_pair()
    raise ValueError(f"pair.kind must be qwen, hf or micro_synthetic, got {pair_cfg.kind!r}")


def load_prompts(p: DictConfig, pair: ModelPair) -> tuple[list[PromptTokens], str]:
    if pair.tokenizer is None:  # id-only (micro) pair: fixed synthetic prompts of token ids
        n = int(p.n or 4)
        return [PromptTokens(f"synthetic-{i}", (2 + i, 5, 7, 11)) for i in range(n)], "synthetic"
    if p.source == "humaneval":
        tokenizer = pair.tokenizer if p.chat_template else None
        if p.split == "all":  # held-out problems first: a partly recorded trace still holds them
            texts = [
                *humaneval_prompts(tokenizer=tokenizer, split="held_out"),
                *humaneval_prompts(tokenizer=tokenizer, split="train"),
            ][: p.n]
        else:
            texts = humaneval_prompts(p.n, tokenizer=tokenizer, split=p.split)
        name = f"humaneval:{p.split}"
    elif p.source == "jsonl":
        texts = load_jsonl_prompts(p.path)[: p.n]
        name = f"jsonl:{Path(p.path).name}"
    elif p.source == "gsm8k":
        texts = gsm8k_prompts(p.n, split=p.split)
        name = f"gsm8k:{p.split}"
    else:
        raise ValueError(f"prompts.source must be humaneval, jsonl or gsm8k, got {p.source!r}")
    return tokenize_prompts(texts, pair.tokenizer, max_prompt_tokens=p.max_prompt_tokens), name


def output_dir(cfg: DictConfig, record: RecordConfig, prompt_set: str) -> Path:
    if cfg.out_dir:
        return Path(cfg.out_dir)
    return Path("traces") / f"{cfg.pair.kind}-{prompt_set.replace(':', '-')}"


@hydra.main(version_base="1.3", config_path="pkg://gelato_env.conf", config_name="record_traces")
def main(cfg: DictConfig) -> None:
    record = RecordConfig(**OmegaConf.to_container(cfg.record, resolve=True))  # type: ignore[arg-type]
    pair = load_models(cfg.pair)
    prompts, prompt_set = load_prompts(cfg.prompts, pair)
    out = output_dir(cfg, record, prompt_set)
    # Hydra changes nothing about cwd (version_base 1.3 keeps hydra.job.chdir false)
    trace, stats = record_trace(pair, prompts, out, record, prompt_set=prompt_set,
                                progress=cfg.progress)  # fmt: skip
    summary = summarize(trace)
    print(f"trace: {trace.path}  prompts={trace.n_prompts}  positions={trace.n_positions}  "
          f"checksum={trace.header.checksum[:12]}")  # fmt: skip
    print(f"recorded now: {stats.n_prompts_recorded} prompts, {stats.n_positions_recorded} "
          f"positions at {stats.positions_per_s:.1f} positions/s")  # fmt: skip
    print(f"acceptance={summary.acceptance:.3f}  E[N] by gamma (no exit)="
          f"{[round(float(x), 2) for x in summary.mean_tokens_by_gamma]}")  # fmt: skip
    try:
        fit = fit_alpha_from_trace(trace)
        print(f"alpha(H) = {fit.a:.3f} * exp({fit.b:.3f} H)  (R^2 {fit.r2:.3f}, {fit.method})")
    except ValueError as exc:
        print(f"alpha(H) fit skipped: {exc}")


if __name__ == "__main__":
    main()
