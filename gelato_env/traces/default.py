"""The default trace: the default pair on its held-out prompts, recorded once and cached.

``default_trace()`` builds the default model pair if needed (:mod:`gelato_env.sd.default_pair`),
draws ``n_prompts`` held-out prompts (:func:`gelato_env.traces.prompts.heldout_prompts`),
records them greedily (``DEFAULT_RECORD``) into
``<cache root>/traces/default-<key>/`` and returns the loaded trace; later calls just load it.
The cache root is ``$GELATO_CACHE_DIR`` or the user cache dir (``platformdirs``), as for the
default pair; ``<key>`` hashes the pair's build hash and the recording settings, so a changed
setting never reuses a stale trace. An interrupted build resumes (the recorder is resumable).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from gelato_env.traces.recorder import RecordConfig
from gelato_env.traces.store import HEADER_FILE, Trace, load_trace

DEFAULT_N_PROMPTS = 200
DEFAULT_RECORD = RecordConfig(gamma_max=8, max_new_tokens=128, temperature=0.0, p_top=0.9)
DEFAULT_MAX_PROMPT_TOKENS = 96  # 96 prompt + 128 new + 8 draft tokens fit the 256-token context
CACHE_ENV_VAR = "GELATO_CACHE_DIR"


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gelato"))


def default_trace_path(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    n_prompts: int = DEFAULT_N_PROMPTS,
    config: RecordConfig = DEFAULT_RECORD,
    build: bool = True,
    progress: bool = True,
) -> Path:
    """Directory of the default trace, recording it first when missing (minutes on a CPU).

    Args:
        cache_dir: cache root; None for ``$GELATO_CACHE_DIR`` or the user cache dir.
        n_prompts: held-out prompts to record.
        config: recording settings.
        build: record the trace when it is not cached yet; False only computes the location.
        progress: show progress bars while building.
    """
    if n_prompts < 1:
        raise ValueError(f"n_prompts must be >= 1, got {n_prompts}")
    from gelato_env.sd.default_pair import DefaultPairConfig

    settings = {k: v for k, v in asdict(config).items() if k not in ("batch_positions",)}
    key = {
        "pair": DefaultPairConfig().config_hash(),
        "n_prompts": n_prompts,
        "max_prompt_tokens": DEFAULT_MAX_PROMPT_TOKENS,
        **settings,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    path = _cache_root(cache_dir) / "traces" / f"default-{digest}"
    if build and not (path / HEADER_FILE).is_file():
        _build(path, cache_dir, n_prompts, config, progress)
    return path


def _build(
    path: Path,
    cache_dir: str | os.PathLike[str] | None,
    n_prompts: int,
    config: RecordConfig,
    progress: bool,
) -> None:
    from gelato_env.sd.default_pair import load_default_pair
    from gelato_env.traces.prompts import heldout_prompts
    from gelato_env.traces.recorder import record_trace

    pair = load_default_pair(None if cache_dir is None else Path(cache_dir), progress=progress)
    prompts = heldout_prompts(
        pair.tokenizer, n_prompts, max_prompt_tokens=DEFAULT_MAX_PROMPT_TOKENS
    )
    record_trace(pair, prompts, path, config, prompt_set=f"heldout:{n_prompts}", progress=progress)


def default_trace(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    n_prompts: int = DEFAULT_N_PROMPTS,
    config: RecordConfig = DEFAULT_RECORD,
    progress: bool = True,
) -> Trace:
    """The default trace, recorded on first use (see :func:`default_trace_path`) and loaded."""
    path = default_trace_path(cache_dir, n_prompts=n_prompts, config=config, progress=progress)
    return load_trace(path)
