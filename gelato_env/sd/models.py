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

import mmap
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
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
        provenance: where the weights came from (packages, versions, file hashes, licence),
            recorded in trace headers; empty when unknown.
    """

    draft: Any
    target: Any
    tokenizer: Any
    draft_id: str
    target_id: str
    eos_token_id: int | None
    vocab_size: int | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

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


def real_vocabulary(vocab: Mapping[str, int]) -> dict[str, int]:
    """``vocab`` without GGUF padding entries ``"[PAD<id>]"`` at their own id.

    GGUF files list placeholder tokens for the padded embedding rows (Qwen2.5: ``[PAD151665]``
    ... ``[PAD151935]``) and ``transformers`` keeps them in tokenizers read from a GGUF; the
    tokenizer of the same model saved by its authors has none. No text maps to them.
    """
    return {t: i for t, i in vocab.items() if t != f"[PAD{i}]"}


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
    models, and, when both tokenizers are given, their ``get_vocab()`` mappings (without GGUF
    padding entries, see :func:`real_vocabulary`). Sizes that
    differ are accepted only as padding (module docstring): both tokenizers given, identical,
    and all their ids below both logits widths.

    Returns:
        V: the common logits width, or the smaller one for a padded pair.

    Raises:
        ValueError: naming both models and what differs.
    """
    n_ids = None  # the tokenizers' ids span [0, n_ids)
    if draft_tokenizer is not None and target_tokenizer is not None:
        draft_vocab = real_vocabulary(draft_tokenizer.get_vocab())
        target_vocab = real_vocabulary(target_tokenizer.get_vocab())
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


# --- GGUF files: where they are, and their vocabulary (read from the metadata, no weights) ------

_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
                 12: "d"}  # fmt: skip
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_GGUF_UNUSED = 5  # tokenizer.ggml.token_type of the padding rows past the real tokens


def _gguf_string(buf: mmap.mmap, pos: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("<Q", buf, pos)
    return buf[pos + 8 : pos + 8 + length].decode("utf-8", errors="replace"), pos + 8 + length


def _gguf_value(buf: mmap.mmap, pos: int, kind: int, keep: bool) -> tuple[Any, int]:
    """One metadata value (arrays only when ``keep``) and the offset just past it."""
    if kind in _GGUF_SCALARS:
        fmt = "<" + _GGUF_SCALARS[kind]
        return struct.unpack_from(fmt, buf, pos)[0], pos + struct.calcsize(fmt)
    if kind == _GGUF_STRING:
        return _gguf_string(buf, pos)
    if kind != _GGUF_ARRAY:
        raise ValueError(f"GGUF metadata value type must be 0..12, got {kind}")
    element, count = struct.unpack_from("<IQ", buf, pos)
    pos += 12
    if element in _GGUF_SCALARS:
        fmt = f"<{count}{_GGUF_SCALARS[element]}"
        values = list(struct.unpack_from(fmt, buf, pos)) if keep else None
        return values, pos + struct.calcsize(fmt)
    items = []
    for _ in range(count):
        value, pos = _gguf_value(buf, pos, element, keep)
        items.append(value)
    return (items if keep else None), pos


def gguf_vocabulary(path: str | Path) -> dict[str, int]:
    """Token -> id of a GGUF file's tokenizer, from its metadata only (no tensor is read).

    Padding rows past the real tokens (token type UNUSED, or named ``[PAD<id>]``) are left
    out, so the result equals :func:`real_vocabulary` of a ``transformers`` tokenizer's
    ``get_vocab()`` for the same tokenizer.

    Raises:
        ValueError: naming the file, when it is not a GGUF (v2/v3) file or has no tokenizer.
    """
    wanted = {"tokenizer.ggml.tokens", "tokenizer.ggml.token_type"}
    fields: dict[str, Any] = {}
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file (it does not start with b'GGUF')")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            version, _, n_keys = struct.unpack_from("<IQQ", buf, 4)
            if version not in (2, 3):
                raise ValueError(f"GGUF version of {path} must be 2 or 3, got {version}")
            pos = 24
            try:
                for _ in range(n_keys):
                    key, pos = _gguf_string(buf, pos)
                    (kind,) = struct.unpack_from("<I", buf, pos)
                    fields[key], pos = _gguf_value(buf, pos + 4, kind, keep=key in wanted)
            except struct.error:
                raise ValueError(f"GGUF file {path} is truncated in its metadata") from None
    tokens = fields.get("tokenizer.ggml.tokens")
    if not tokens:
        raise ValueError(f"GGUF file {path} has no tokenizer (no tokenizer.ggml.tokens metadata)")
    types = fields.get("tokenizer.ggml.token_type") or [0] * len(tokens)
    if len(types) != len(tokens):
        raise ValueError(
            f"GGUF file {path} is corrupt: {len(tokens)} tokens but {len(types)} token types"
        )
    vocab = {t: i for i, (t, k) in enumerate(zip(tokens, types, strict=True)) if k != _GGUF_UNUSED}
    return real_vocabulary(vocab)


@dataclass(frozen=True)
class _ModelRef:
    """One side of a pair as given: where ``from_pretrained`` finds it and how to name it."""

    side: str  # "draft" or "target"
    name: str  # for errors and ModelPair ids
    source: str  # local directory or hub id passed to from_pretrained
    gguf_file: str | None  # a GGUF file (absolute path when local) or None
    local: bool  # source is a local directory


def _resolve(side: str, ref: str | Path, gguf_file: str | None) -> _ModelRef:
    """Where one side is; raises FileNotFoundError for local paths that do not exist."""
    path = Path(ref).expanduser()
    if str(ref).endswith(".gguf"):
        if gguf_file is not None:
            raise ValueError(f"{side} is a .gguf file ({str(ref)!r}); do not also pass gguf_file")
        if not path.is_file():
            raise FileNotFoundError(f"{side} GGUF file {str(ref)!r} does not exist")
        return _ModelRef(side, str(ref), str(path.parent), str(path.resolve()), True)
    if _is_local_path(ref) and not path.exists():
        raise FileNotFoundError(f"{side} model path {str(ref)!r} does not exist")
    local = path.is_dir()
    if gguf_file is None:
        return _ModelRef(side, str(ref), str(path) if local else str(ref), None, local)
    if local:
        file = path / gguf_file
        if not file.is_file():
            raise FileNotFoundError(f"{side} GGUF file {str(file)!r} does not exist")
        return _ModelRef(side, str(file), str(path), str(file.resolve()), True)
    return _ModelRef(side, f"{ref}/{gguf_file}", str(ref), gguf_file, False)


def _load_model(ref: _ModelRef, dtype: torch.dtype, trust_remote_code: bool) -> Any:
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"gguf_file": ref.gguf_file} if ref.gguf_file else {}
    try:
        return AutoModelForCausalLM.from_pretrained(
            ref.source, dtype=dtype, trust_remote_code=trust_remote_code, **kwargs
        )
    except (OSError, ValueError, KeyError) as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "0")
        raise OSError(
            f"cannot load {ref.side} model {ref.name!r}: not a loadable local model directory "
            f"nor a hub id available offline (HF_HUB_OFFLINE={offline}): {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}"
        ) from err


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model",
                    "vocab.txt", "spiece.model")  # fmt: skip


def _load_tokenizer(ref: _ModelRef, trust_remote_code: bool) -> Any:
    """The side's tokenizer; a directory without one is an error naming it.

    (``transformers`` would otherwise invent a one-token tokenizer from the model config.)
    """
    from transformers import AutoTokenizer

    where = f"{ref.side} model {ref.name!r}"
    if ref.local and not ref.gguf_file:
        if not any((Path(ref.source) / name).is_file() for name in _TOKENIZER_FILES):
            raise ValueError(
                f"{where} has no tokenizer: directory {ref.source} holds none of "
                f"{', '.join(_TOKENIZER_FILES)}; save one there (tokenizer.save_pretrained)"
            )
    kwargs: dict[str, Any] = {"gguf_file": ref.gguf_file} if ref.gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            ref.source, trust_remote_code=trust_remote_code, **kwargs
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OSError(f"cannot load the tokenizer of {where}: {type(err).__name__}: {err}") from err
    if len(tokenizer.get_vocab()) <= 1:
        raise ValueError(f"{where} has no tokenizer (transformers built an empty one)")
    return tokenizer


def _check_gguf_vocabularies(refs: tuple[_ModelRef, _ModelRef], trust_remote_code: bool) -> None:
    """Refuse a pair with a GGUF side whose vocabulary differs from the other side's.

    Runs before any weights are read: a GGUF's vocabulary is in its metadata, and the other
    side's tokenizer loads in seconds.
    """
    vocabs = [
        gguf_vocabulary(ref.gguf_file)
        if ref.gguf_file and ref.local
        else real_vocabulary(_load_tokenizer(ref, trust_remote_code).get_vocab())
        for ref in refs
    ]
    if vocabs[0] != vocabs[1]:
        raise ValueError(
            f"incompatible model pair: the vocabularies of draft {refs[0].name!r} and target "
            f"{refs[1].name!r} differ ({_vocab_diff(vocabs[0], vocabs[1])}); refused before "
            f"loading the weights"
        )


def load_pair(
    draft: str | Path,
    target: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    trust_remote_code: bool = False,
    draft_gguf_file: str | None = None,
    target_gguf_file: str | None = None,
    draft_id: str | None = None,
    target_id: str | None = None,
) -> ModelPair:
    """Load a draft/target pair of ``AutoModelForCausalLM`` and their shared tokenizer.

    Either side may be a GGUF file: a path ending in ``.gguf``, or a directory / hub id plus
    ``draft_gguf_file`` / ``target_gguf_file`` naming the file in it. ``transformers``
    dequantizes GGUF weights into ``dtype`` on load (needs the ``gguf`` and ``accelerate``
    packages, e.g. the ``[qwen]`` extra); a local GGUF's vocabulary is compared with the other
    side's before any weights are loaded.

    Args:
        draft: local directory, hub id or ``.gguf`` file of the draft model.
        target: local directory, hub id or ``.gguf`` file of the target model.
        device: where both models run; None picks CUDA when available, else CPU.
        dtype: model dtype (``torch.dtype`` or name); None picks bf16/fp16 on CUDA, fp32 on CPU.
        trust_remote_code: passed to ``from_pretrained`` (only for models you trust).
        draft_gguf_file: GGUF file inside the ``draft`` directory or hub repo, or None.
        target_gguf_file: GGUF file inside the ``target`` directory or hub repo, or None.
        draft_id: the draft's id in the pair (trace metadata); None for ``draft`` as given.
        target_id: the target's id in the pair; None for ``target`` as given.

    Returns:
        The pair in eval mode on ``device``; its tokenizer is the target's (both sides must
        have one, with identical vocabularies).

    Raises:
        FileNotFoundError: a local path or GGUF file that does not exist (names side and path).
        OSError: a model or tokenizer that cannot be loaded (names the side and the path or id).
        ValueError: a side without a tokenizer (names the directory), or incompatible
            vocabularies (names both models and what differs).
    """
    resolved_device = resolve_device(device)
    resolved_dtype = resolve_dtype(dtype, resolved_device)
    refs = (
        _resolve("draft", draft, draft_gguf_file),
        _resolve("target", target, target_gguf_file),
    )
    if any(ref.gguf_file and ref.local for ref in refs):
        _check_gguf_vocabularies(refs, trust_remote_code)
    draft_model, target_model = (_load_model(r, resolved_dtype, trust_remote_code) for r in refs)
    draft_tok, target_tok = (_load_tokenizer(r, trust_remote_code) for r in refs)
    names = (draft_id or refs[0].name, target_id or refs[1].name)
    check_compatible(
        draft_model,
        target_model,
        draft_tokenizer=draft_tok,
        target_tokenizer=target_tok,
        draft_id=names[0],
        target_id=names[1],
    )
    return pair_from_models(
        draft_model.to(resolved_device),
        target_model.to(resolved_device),
        target_tok,
        draft_id=names[0],
        target_id=names[1],
    )
