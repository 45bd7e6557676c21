"""SYNTHETIC traces with a known entropy -> acceptance law, written directly (no models).

Each prompt has one entropy per output position s, h[s] (an AR(1) in log space, so context
difficulty persists over a few tokens), and one greedy match bit c[s] ~ Bernoulli(alpha(h[s]))
with alpha(H) = exp(-0.35 H) (the paper's Qwen2.5 law [S]). Trace row t, draft step j holds
position t + j: the context of step j after j - 1 matches is position t + j's own, as in a
recorded greedy trace. Statistics are synthetic: they test estimators, not the paper.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gelato_env.traces.store import COLUMNS, Trace, load_trace, write_trace

ALPHA_B = -0.35


def alpha_of(entropy: np.ndarray) -> np.ndarray:
    """The synthetic traces' true acceptance law alpha(H) = exp(-0.35 H)."""
    return np.exp(ALPHA_B * entropy)


def write_alpha_trace(
    root: Path,
    *,
    n_prompts: int = 40,
    length: int = 100,
    gamma_max: int = 8,
    seed: int = 0,
    log_mean: float = float(np.log(0.45)),
    phi: float = 0.8,
    sigma: float = 0.7,
    spike: tuple[int, int, float] | None = None,
) -> Trace:
    """Write and load a synthetic greedy trace (module docstring).

    Args:
        root: trace directory.
        n_prompts: prompts.
        length: output positions per prompt.
        gamma_max: recorded draft steps G.
        seed: RNG seed.
        log_mean: mean of ln H.
        phi: AR(1) coefficient of ln H across positions.
        sigma: innovation scale of ln H.
        spike: ``(start, stop, entropy)``: positions [start, stop) of every prompt get this
            entropy (a stretch of hopeless drafts).
    """
    gen = np.random.default_rng(seed)
    g = gamma_max
    rows: dict[str, list[np.ndarray]] = {k: [] for k in COLUMNS}
    for _ in range(n_prompts):
        n = length + g
        x = np.empty(n)
        x[0] = log_mean + gen.normal(0.0, sigma / np.sqrt(1.0 - phi**2))
        for s in range(1, n):
            x[s] = log_mean + phi * (x[s - 1] - log_mean) + gen.normal(0.0, sigma)
        h = np.exp(x)
        if spike is not None:
            h[spike[0] : spike[1]] = spike[2]
        c = (gen.random(n) < alpha_of(h)).astype(np.float64)
        idx = np.arange(length)[:, None] + np.arange(g)[None, :]  # (length, G): position t + j
        rows["entropy"].append(h[idx])
        rows["accept_prob"].append(c[idx])
        rows["max_prob"].append(np.exp(-h[idx]))
        rows["topp_size"].append(1 + np.floor(3.0 * h[idx]))
        rows["draft_tokens"].append(gen.integers(2, 64, size=(length, g)))
        rows["target_tokens"].append(gen.integers(2, 64, size=length))
    arrays: dict[str, Any] = {
        k: np.asarray(np.concatenate(v), dtype=COLUMNS[k][0]) for k, v in rows.items()
    }
    arrays["prompt_offsets"] = np.arange(0, n_prompts * length + 1, length, dtype=np.int64)
    arrays["prompt_tokens"] = np.arange(2, 2 + 3 * n_prompts, dtype=np.int32)
    arrays["prompt_token_offsets"] = np.arange(0, 3 * n_prompts + 1, 3, dtype=np.int64)
    meta = {
        "code_version": "test",
        "draft_id": "synthetic-alpha",
        "target_id": "synthetic-alpha",
        "tokenizer_sha256": "none",
        "vocab_size": 64,
        "eos_token_id": None,
        "temperature": 0.0,
        "gamma_max": g,
        "p_top": 0.9,
        "max_new_tokens": length,
        "seed": seed,
        "prompt_set": "synthetic",
        "prompt_ids": [f"syn-{seed}-{i}" for i in range(n_prompts)],
    }
    write_trace(root, meta, arrays)
    return load_trace(root)


@pytest.fixture(scope="session")
def alpha_trace_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Trace]:
    """``factory(**kwargs)``: a synthetic trace per distinct ``write_alpha_trace`` kwargs."""
    made: dict[str, Trace] = {}

    def factory(**kwargs: Any) -> Trace:
        key = repr(sorted(kwargs.items()))
        if key not in made:
            made[key] = write_alpha_trace(tmp_path_factory.mktemp("alpha_trace"), **kwargs)
        return made[key]

    return factory
