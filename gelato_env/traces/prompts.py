"""Prompt sets to record traces on: built-in held-out, local JSONL, GSM8K.

A prompt is text with a stable id; recording needs its token ids under the pair's tokenizer
(:class:`PromptTokens`). Sources:

- :func:`heldout_prompts`: the default pair's held-out prompts from
  :func:`gelato_env.sd.corpus.held_out_prompts` -- snippets of the Python standard library's
  source that the corpus module keeps out of the default pair's training split (see that
  module for how the split is made), so the traces measure the pair on unseen text.
- :func:`load_jsonl_prompts`: one ``{"id": ..., "prompt": ...}`` object per line.
- :func:`gsm8k_prompts`: the GSM8K questions via ``datasets`` (extra ``gsm8k``; needs a network
  or a populated ``datasets`` cache).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class TextPrompt:
    """A prompt as text.

    Attributes:
        id: stable identifier (stored in trace metadata).
        text: the prompt text.
    """

    id: str
    text: str


@dataclass(frozen=True, slots=True)
class PromptTokens:
    """A tokenized prompt.

    Attributes:
        id: stable identifier.
        token_ids: token ids under the recording pair's tokenizer, length >= 1.
    """

    id: str
    token_ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.token_ids:
            raise ValueError(f"token_ids of prompt {self.id!r} must not be empty")


def load_jsonl_prompts(path: str | os.PathLike[str]) -> list[TextPrompt]:
    """Read ``{"id": str|int, "prompt": str}`` objects, one per line (blank lines skipped).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming file and line, for invalid JSON, a missing/ill-typed key, a
            duplicate id, or a file without prompts.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: prompt file not found")
    prompts: list[TextPrompt] = []
    seen: set[str] = set()
    with open(file, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{file}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{where}: expected a JSON object with keys 'id' and 'prompt'")
            missing = [k for k in ("id", "prompt") if k not in obj]
            if missing:
                raise ValueError(f"{where}: missing key(s) {missing}")
            if not isinstance(obj["prompt"], str) or not obj["prompt"]:
                raise ValueError(f"{where}: 'prompt' must be a non-empty string")
            if not isinstance(obj["id"], (str, int)) or isinstance(obj["id"], bool):
                raise ValueError(f"{where}: 'id' must be a string or an integer")
            pid = str(obj["id"])
            if pid in seen:
                raise ValueError(f"{where}: duplicate id {pid!r}")
            seen.add(pid)
            prompts.append(TextPrompt(pid, obj["prompt"]))
    if not prompts:
        raise ValueError(f"{file}: no prompts (empty prompt set)")
    return prompts


def tokenize_prompts(
    prompts: Sequence[TextPrompt], tokenizer: Any, *, max_prompt_tokens: int | None = None
) -> list[PromptTokens]:
    """Tokenize prompts (no special tokens added), keeping the last ``max_prompt_tokens``.

    Raises:
        ValueError: a prompt tokenizes to nothing, or ``max_prompt_tokens`` < 1.
    """
    if max_prompt_tokens is not None and max_prompt_tokens < 1:
        raise ValueError(f"max_prompt_tokens must be >= 1, got {max_prompt_tokens}")
    out = []
    for p in prompts:
        ids = list(tokenizer(p.text, add_special_tokens=False)["input_ids"])
        if max_prompt_tokens is not None:
            ids = ids[-max_prompt_tokens:]
        if not ids:
            raise ValueError(f"prompt {p.id!r} tokenizes to no tokens")
        out.append(PromptTokens(p.id, tuple(int(i) for i in ids)))
    return out


def heldout_prompts(
    tokenizer: Any, n: int, *, max_prompt_tokens: int | None = 96
) -> list[PromptTokens]:
    """The default pair's ``n`` held-out prompts (see :mod:`gelato_env.sd.corpus`), tokenized."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    from gelato_env.sd.corpus import held_out_prompts

    texts = [TextPrompt(str(p.id), p.text) for p in held_out_prompts(n)]
    return tokenize_prompts(texts, tokenizer, max_prompt_tokens=max_prompt_tokens)


def gsm8k_prompts(n: int, *, split: str = "test") -> list[TextPrompt]:
    """The first ``n`` GSM8K questions of ``split`` (the paper's evaluation set).

    Raises:
        ImportError: the ``gsm8k`` extra (``datasets``) is not installed.
        RuntimeError: the dataset cannot be downloaded (offline) and is not cached.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    try:
        import datasets
    except ImportError:
        raise ImportError(
            "GSM8K prompts need the 'gsm8k' extra: pip install 'gelato-env[gsm8k]'"
        ) from None
    try:
        ds = datasets.load_dataset("openai/gsm8k", "main", split=split)
    except Exception as exc:  # datasets raises many connection error types
        raise RuntimeError(
            f"cannot load GSM8K ({type(exc).__name__}: {exc}); it needs a network connection "
            "or a populated datasets cache (HF_HUB_OFFLINE=1 blocks downloads)"
        ) from None
    rows = ds.select(range(min(n, len(ds))))
    return [TextPrompt(f"gsm8k-{split}-{i}", row["question"]) for i, row in enumerate(rows)]
