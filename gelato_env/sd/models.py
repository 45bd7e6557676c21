"""Draft/target model pairs: any two ``AutoModelForCausalLM`` sharing a tokenizer.

:func:`load_pair` loads a pair by local path or hub id (offline: only what is on disk or in the
hub cache), :func:`pair_from_models` wraps in-memory models, and :func:`check_compatible`
refuses pairs whose vocabularies differ, since speculative decoding compares token ids and
distributions over one shared vocabulary.

Padded vocabularies: model families pad their embedding matrices past the tokenizer's last id
by different amounts (Qwen2.5-0.5B has 151,936 logits per position, Qwen2.5-7B 152,064, one
tokenizer of 151,665 ids). Such a pair is accepted when both tokenizers are given and identical
and every token id lies below both widths; the shared vocabulary is then the smaller width and
both models' logits are cut to it (:attr:`ModelPair.vocab_size`). No token maps to the cut
rows, so greedy output still equals the target's greedy output whenever the target's argmax is
a real token (always, for a trained model), and sampling follows the target distribution over
the real tokens.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gelato_env.sd.device import resolve_device, resolve_dtype


@dataclass(frozen=True)
class ModelPair:
    """A draft model and a target model that share one vocabulary.

    Attributes:
        draft: the small on-device model (a ``transformers`` causal LM, eval mode).
        target: the large edge model (a ``transformers`` causal LM, eval mode).
        tokenizer: the shared tokenizer, or None for id-only pairs (unit tests).
        draft_id: where the draft came from (hub id or local path), for trace metadata.
        target_id: where the target came from (hub id or local path), for trace metadata.
        eos_token_id: the id that ends a generation, or None.
        vocab_size: V, the shared vocabulary both models' logits are cut to (smaller than a
            padded model's logits width, see the module docstring); None for a pair built
            without :func:`pair_from_models`, whose V is then the models' common logits width.
    """

    draft: Any
    target: Any
    tokenizer: Any
    draft_id: str
    target_id: str
    eos_token_id: int | None
    vocab_size: int | None = None

    def shared_vocab_size(self) -> int:
        """V: :attr:`vocab_size`, or the common logits width (checked) when that is None."""
        if self.vocab_size is not None:
            return self.vocab_size
        return check_compatible(
            self.draft, self.target, draft_id=self.draft_id, target_id=self.target_id
        )


def logits_width(model: Any) -> int:
    """Logits per position: the output-embedding rows, else ``config.vocab_size``."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    weight = getattr(head, "weight", None)
    if isinstance(weight, torch.Tensor):
        return int(weight.shape[0])
    return int(model.config.vocab_size)


def _vocab_diff(draft_vocab: Mapping[str, int], target_vocab: Mapping[str, int]) -> str:
    only_draft = sorted(set(draft_vocab) - set(target_vocab))[:3]
    only_target = sorted(set(target_vocab) - set(draft_vocab))[:3]
    remapped = sorted(
        t for t in set(draft_vocab) & set(target_vocab) if draft_vocab[t] != target_vocab[t]
    )
    parts = [f"sizes {len(draft_vocab)} vs {len(target_vocab)}"]
    if only_draft:
        parts.append(f"draft-only tokens e.g. {only_draft}")
    if only_target:
        parts.append(f"target-only tokens e.g. {only_target}")
    if remapped:
        parts.append(f"{len(remapped)} tokens with different ids, e.g. {remapped[:3]}")
    return "; ".join(parts)


def check_compatible(
    draft_model: Any,
    target_model: Any,
    *,
    draft_tokenizer: Any = None,
    target_tokenizer: Any = None,
    draft_id: str = "draft",
    target_id: str = "target",
) -> int:
    """Refuse a pair that does not share one vocabulary; return the shared vocabulary size V.

    Compares ``config.vocab_size`` and the logits width (output-embedding rows) of the two
    models, and, when both tokenizers are given, their ``get_vocab()`` mappings. Sizes that
    differ are accepted only as padding (module docstring): both tokenizers given, identical,
    and all their ids below both logits widths.

    Returns:
        V: the common logits width, or the smaller one for a padded pair.

    Raises:
        ValueError: naming both models and what differs.
    """
    n_ids = None  # the tokenizers' ids span [0, n_ids)
    if draft_tokenizer is not None and target_tokenizer is not None:
        draft_vocab, target_vocab = draft_tokenizer.get_vocab(), target_tokenizer.get_vocab()
        if draft_vocab != target_vocab:
            raise ValueError(
                f"incompatible model pair: the tokenizers of draft {draft_id!r} and target "
                f"{target_id!r} differ ({_vocab_diff(draft_vocab, target_vocab)})"
            )
        n_ids = max(draft_vocab.values(), default=-1) + 1
    widths = logits_width(draft_model), logits_width(target_model)
    vocab_size = min(widths)
    for what, draft_size, target_size in (
        (
            "config.vocab_size",
            int(draft_model.config.vocab_size),
            int(target_model.config.vocab_size),
        ),
        ("logits width", *widths),
    ):
        if draft_size != target_size and (n_ids is None or n_ids > vocab_size):
            padding = (
                "no tokenizers to tell padding from other tokens"
                if n_ids is None
                else f"the tokenizer's ids reach {n_ids - 1}, past the smaller width"
            )
            raise ValueError(
                f"incompatible model pair: draft {draft_id!r} has {what} {draft_size} but target "
                f"{target_id!r} has {target_size}; speculative decoding needs one shared "
                f"vocabulary (padded vocabularies are accepted only with one shared tokenizer "
                f"whose ids fit both: {padding})"
            )
    return vocab_size


def _eos_token_id(tokenizer: Any, target: Any) -> int | None:
    candidates = [
        getattr(tokenizer, "eos_token_id", None),
        getattr(getattr(target, "generation_config", None), "eos_token_id", None),
        getattr(target.config, "eos_token_id", None),
    ]
    for eos in candidates:
        if isinstance(eos, (list, tuple)):
            eos = eos[0] if eos else None
        if isinstance(eos, int):
            return eos
    return None


def pair_from_models(
    draft: Any,
    target: Any,
    tokenizer: Any = None,
    *,
    draft_id: str = "draft",
    target_id: str = "target",
    eos_token_id: int | None = None,
) -> ModelPair:
    """Wrap two in-memory causal LMs as a :class:`ModelPair` (both are put in eval mode).

    Args:
        draft: the draft causal LM.
        target: the target causal LM.
        tokenizer: the shared tokenizer, or None for id-only pairs. With a tokenizer, models
            padded past its ids by different amounts are accepted (module docstring).
        draft_id: a name for the draft, for error messages and trace metadata.
        target_id: a name for the target.
        eos_token_id: the id ending a generation; None takes the tokenizer's, else the target's.

    Raises:
        ValueError: the vocabularies differ (see :func:`check_compatible`).
    """
    vocab_size = check_compatible(
        draft,
        target,
        draft_tokenizer=tokenizer,
        target_tokenizer=tokenizer,
        draft_id=draft_id,
        target_id=target_id,
    )
    if eos_token_id is None:
        eos_token_id = _eos_token_id(tokenizer, target)
    return ModelPair(
        draft=draft.eval(),
        target=target.eval(),
        tokenizer=tokenizer,
        draft_id=draft_id,
        target_id=target_id,
        eos_token_id=eos_token_id,
        vocab_size=vocab_size,
    )


def _is_local_path(ref: str | Path) -> bool:
    text = str(ref)
    return (
        isinstance(ref, Path)
        or text.startswith(("/", "./", "../", "~", ".\\"))
        or os.path.isabs(text)
    )


def _load_model(side: str, ref: str | Path, dtype: torch.dtype, trust_remote_code: bool) -> Any:
    from transformers import AutoModelForCausalLM

    path = Path(ref).expanduser()
    if _is_local_path(ref) and not path.exists():
        raise FileNotFoundError(f"{side} model path {str(ref)!r} does not exist")
    source = str(path) if path.exists() else str(ref)
    try:
        return AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError, KeyError) as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "0")
        raise OSError(
            f"cannot load {side} model {str(ref)!r}: not a loadable local model directory nor a "
            f"hub id available offline (HF_HUB_OFFLINE={offline}): {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}"
        ) from err


def _load_tokenizer(ref: str | Path, trust_remote_code: bool) -> Any:
    from transformers import AutoTokenizer

    path = Path(ref).expanduser()
    try:
        return AutoTokenizer.from_pretrained(
            str(path) if path.exists() else str(ref), trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_pair(
    draft: str | Path,
    target: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    trust_remote_code: bool = False,
) -> ModelPair:
    """Load a draft/target pair of ``AutoModelForCausalLM`` and their shared tokenizer.

    Args:
        draft: local directory or hub id of the draft model.
        target: local directory or hub id of the target model.
        device: where both models run; None picks CUDA when available, else CPU.
        dtype: model dtype (``torch.dtype`` or name); None picks bf16/fp16 on CUDA, fp32 on CPU.
        trust_remote_code: passed to ``from_pretrained`` (only for models you trust).

    Returns:
        The pair in eval mode on ``device``; the tokenizer is the target's (or the draft's when
        the target has none, or None when neither has one).

    Raises:
        FileNotFoundError: a local path that does not exist (names the side and the path).
        OSError: a model that cannot be loaded (names the side and the path or id).
        ValueError: incompatible vocabularies (names both models and what differs).
    """
    resolved_device = resolve_device(device)
    resolved_dtype = resolve_dtype(dtype, resolved_device)
    draft_model = _load_model("draft", draft, resolved_dtype, trust_remote_code)
    target_model = _load_model("target", target, resolved_dtype, trust_remote_code)
    draft_tok = _load_tokenizer(draft, trust_remote_code)
    target_tok = _load_tokenizer(target, trust_remote_code)
    check_compatible(
        draft_model,
        target_model,
        draft_tokenizer=draft_tok,
        target_tokenizer=target_tok,
        draft_id=str(draft),
        target_id=str(target),
    )
    tokenizer = target_tok if target_tok is not None else draft_tok
    return pair_from_models(
        draft_model.to(resolved_device),
        target_model.to(resolved_device),
        tokenizer,
        draft_id=str(draft),
        target_id=str(target),
    )
