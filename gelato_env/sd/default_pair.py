"""gelato's offline default model pair, built from the Python standard library (DESIGN.md §8).

No model hub is needed: :func:`load_default_pair` trains, caches and loads

1. a byte-level BPE tokenizer (``tokenizers``) on the train split of :mod:`gelato_env.sd.corpus`,
   wrapped as a ``transformers`` ``PreTrainedTokenizerFast``; ``<|endoftext|>`` is BOS/EOS/PAD;
2. a GPT-2-style target (``GPT2LMHeadModel``, 6 layers x 256 by default) trained as a next-token
   language model with AdamW;
3. a GPT-2-style draft (1 layer x 128) distilled from the target: the loss is
   ``T^2 * KL(p_target^T || q_draft^T) + ce_weight * CE(q_draft, next token)`` per position.

Builds are seeded (same config and Python version -> same weights on the same torch build and
thread count: every batch is a pure function of ``(seed, phase, step)``, dropout is off) and
resumable: each phase saves a checkpoint (model, optimizer, step, RNG states) every
``checkpoint_every`` steps and an interrupted build continues from the last one. The cache
lives at ``<root>/default_pair/<config hash>/`` where ``<root>`` is the ``cache_dir`` argument,
else ``$GELATO_CACHE_DIR``, else ``platformdirs.user_cache_dir("gelato")``; a manifest
(config, seed, versions, sha256 of every file, build time, metrics) is written last and
checked on every load: a missing, unreadable or altered file triggers a rebuild with a warning
that names it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from gelato_env.sd import corpus
from gelato_env.sd.models import ModelPair

BUILDER_VERSION = 1  # bump when the build recipe changes: it is part of the cache key
SPECIAL_TOKEN = "<|endoftext|>"  # BOS, EOS and PAD, id 0
CACHE_ENV_VAR = "GELATO_CACHE_DIR"
MANIFEST = "manifest.json"
ARTIFACT_DIRS = ("tokenizer", "target", "draft")

StopHook = Callable[[str, int], bool]


class BuildInterrupted(RuntimeError):
    """Raised when a ``stop_hook`` stopped a build; its checkpoint is on disk, call again."""


@dataclass(frozen=True)
class DefaultPairConfig:
    """Everything that determines the default pair's weights (all of it enters the cache key).

    The defaults are tuned so that greedy drafting of 4 tokens accepts about 1.5 draft tokens
    per round on held-out stdlib code, within about 10 minutes on an idle 2-core CPU.

    Attributes:
        seed: seeds model initialisation and the data order.
        vocab_size: BPE vocabulary size including the 256 byte symbols and the special token.
        include_tests: train on the stdlib's test packages too (3x more text, mostly tests).
        max_train_files: use only the first N train files (sorted), None for all; for tests.
        context_len: training sequence length and the models' ``n_positions`` (tokens). Prompts
            plus generated tokens must fit in it (~110 tokens for a 384-char prompt).
        target_layers: transformer blocks of the target.
        target_width: hidden size of the target (``n_embd``).
        target_heads: attention heads of the target; must divide ``target_width``.
        target_steps: AdamW steps of language-model training.
        target_batch: sequences per target step (x ``context_len`` tokens).
        target_lr: peak learning rate of the target (linear warmup, cosine decay to 10 %).
        draft_layers: transformer blocks of the draft.
        draft_width: hidden size of the draft.
        draft_heads: attention heads of the draft; must divide ``draft_width``.
        draft_steps: AdamW steps of distillation.
        draft_batch: sequences per distillation step.
        draft_lr: peak learning rate of the draft.
        distill_temperature: temperature T of both distributions in the KL term.
        ce_weight: weight of the next-token cross-entropy added to the KL term.
        warmup_fraction: fraction of each phase's steps spent in linear LR warmup.
        weight_decay: AdamW decoupled weight decay (matrices only, not biases/LayerNorms).
        grad_clip: global gradient-norm clip.
        checkpoint_every: steps between training checkpoints (resumability, not the weights).
        n_threads: ``torch.set_num_threads`` during the build (results depend on it slightly).
        eval_prompts: held-out prompts for the acceptance measurement in the manifest.
        eval_new_tokens: tokens generated per evaluation prompt.
        eval_gamma: greedy drafting budget of the acceptance measurement.
    """

    seed: int = 0
    vocab_size: int = 4096
    include_tests: bool = False
    max_train_files: int | None = None
    context_len: int = 256
    target_layers: int = 6
    target_width: int = 256
    target_heads: int = 4
    target_steps: int = 700
    target_batch: int = 8
    target_lr: float = 2e-3
    draft_layers: int = 1
    draft_width: int = 128
    draft_heads: int = 2
    draft_steps: int = 400
    draft_batch: int = 8
    draft_lr: float = 3e-3
    distill_temperature: float = 1.0
    ce_weight: float = 0.1
    warmup_fraction: float = 0.05
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    checkpoint_every: int = 100
    n_threads: int = 2
    eval_prompts: int = 16
    eval_new_tokens: int = 64
    eval_gamma: int = 4

    def __post_init__(self) -> None:
        _check_ints(self)
        if self.vocab_size < 258:
            raise ValueError(
                f"vocab_size must be >= 258 (bytes + special + 1), got {self.vocab_size}"
            )
        if self.vocab_size > 65535:
            raise ValueError(f"vocab_size must be <= 65535 (uint16 tokens), got {self.vocab_size}")
        if self.max_train_files is not None and self.max_train_files < 1:
            raise ValueError(f"max_train_files must be >= 1 or None, got {self.max_train_files}")
        for width, heads in (("target_width", "target_heads"), ("draft_width", "draft_heads")):
            if getattr(self, width) % getattr(self, heads):
                raise ValueError(
                    f"{heads} must divide {width}, got {getattr(self, heads)} and "
                    f"{getattr(self, width)}"
                )
        _check_floats(self)
        if self.eval_new_tokens + self.eval_gamma + 16 > self.context_len:
            raise ValueError(
                f"context_len must be >= eval_new_tokens + eval_gamma + 16, got {self.context_len}"
            )

    def config_hash(self) -> str:
        """12 hex digits naming this build: config, builder version and Python minor version."""
        key = {
            "config": dataclasses.asdict(self),
            "builder_version": BUILDER_VERSION,
            "python": ".".join(platform.python_version_tuple()[:2]),
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _check_ints(config: DefaultPairConfig) -> None:
    for name in (
        "vocab_size", "context_len", "target_layers", "target_width", "target_heads",
        "target_steps", "target_batch", "draft_layers", "draft_width", "draft_heads",
        "draft_steps", "draft_batch", "checkpoint_every", "n_threads", "eval_prompts",
        "eval_new_tokens", "eval_gamma",
    ):  # fmt: skip
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def _check_floats(config: DefaultPairConfig) -> None:
    for name in ("target_lr", "draft_lr", "distill_temperature", "grad_clip"):
        value = getattr(config, name)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value}")
    for name in ("ce_weight", "weight_decay"):
        value = getattr(config, name)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    if not 0.0 <= config.warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {config.warmup_fraction}")


# --- cache location and manifest ---------------------------------------------------------------


def default_cache_root() -> Path:
    """``$GELATO_CACHE_DIR`` if set, else ``platformdirs.user_cache_dir("gelato")``."""
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gelato"))


def pair_dir(cache_dir: str | Path | None = None, config: DefaultPairConfig | None = None) -> Path:
    """Directory of the default pair built with ``config`` under cache root ``cache_dir``."""
    config = config or DefaultPairConfig()
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_root()
    return root / "default_pair" / config.config_hash()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _artifact_files(out: Path) -> list[Path]:
    return sorted(p for d in ARTIFACT_DIRS for p in (out / d).rglob("*") if p.is_file())


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest of a built pair directory.

    Raises:
        ValueError: the manifest is missing, unreadable, or not a JSON object (message names it).
    """
    path = out / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is missing or unreadable: {err}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ValueError(f"{path} is not a default-pair manifest (no 'files' table)")
    return manifest


def verify_cache(out: Path, config: DefaultPairConfig) -> str | None:
    """Why the cached pair in ``out`` cannot be used, or None when it is complete and intact."""
    try:
        manifest = read_manifest(out)
    except ValueError as err:
        return str(err)
    if manifest.get("config") != dataclasses.asdict(config):
        return f"{out / MANIFEST} was written for a different config"
    for rel, expected in manifest["files"].items():
        path = out / rel
        if not path.is_file():
            return f"{path} is missing"
        if _sha256(path) != expected:
            return f"{path} fails its sha256 checksum"
    return None


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)


# --- data -----------------------------------------------------------------------------------


def _train_texts(config: DefaultPairConfig) -> list[str]:
    train, _ = corpus.split_files(include_tests=config.include_tests)
    if config.max_train_files is not None:
        train = train[: config.max_train_files]
    return [corpus.read_source(p) for p in train]


def _held_out_texts(config: DefaultPairConfig, max_files: int = 16) -> list[str]:
    _, held_out = corpus.split_files(include_tests=config.include_tests)
    return [corpus.read_source(p) for p in held_out[:max_files]]


def train_tokenizer(texts: Sequence[str], vocab_size: int, *, progress: bool = False) -> Any:
    """Train a byte-level BPE on ``texts``; returns a ``PreTrainedTokenizerFast``.

    ``<|endoftext|>`` gets id 0 and serves as BOS, EOS and PAD. Decoding inverts encoding
    exactly (byte-level: every string is representable, no unknown token).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPECIAL_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=progress,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=SPECIAL_TOKEN,
        eos_token=SPECIAL_TOKEN,
        pad_token=SPECIAL_TOKEN,
        clean_up_tokenization_spaces=False,
    )


def encode_corpus(tokenizer: Any, texts: Sequence[str]) -> npt.NDArray[np.uint16]:
    """Token stream of ``texts``, each text followed by EOS, shape ``(n_tokens,)``."""
    eos = int(tokenizer.eos_token_id)
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    stream = [tok for doc in ids for tok in [*doc, eos]]
    return np.asarray(stream, dtype=np.uint16)


def _batch(
    tokens: npt.NDArray[np.uint16], seed: int, phase: int, step: int, batch: int, length: int
) -> torch.Tensor:
    """Batch of windows for ``step``: a pure function of its arguments (hence resumable).

    Returns:
        int64 tensor of shape ``(batch, length + 1)``: inputs are ``[:, :-1]``, labels ``[:, 1:]``.
    """
    rng = np.random.default_rng([seed, phase, step])
    starts = rng.integers(0, tokens.shape[0] - length - 1, size=batch)
    windows = np.stack([tokens[s : s + length + 1] for s in starts])  # (batch, length + 1)
    return torch.from_numpy(windows.astype(np.int64))


# --- models and training ----------------------------------------------------------------------


def _gpt2(config: DefaultPairConfig, n_layer: int, n_embd: int, n_head: int, seed: int) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    gpt_config = GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.context_len,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=0.0,  # no dropout: a few hundred steps do not overfit, and it keeps
        embd_pdrop=0.0,  # the build a pure function of (config, seed)
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    return GPT2LMHeadModel(gpt_config)


def _lr(step: int, total: int, peak: float, warmup_fraction: float) -> float:
    """Linear warmup then cosine decay to 10 % of ``peak``, for 0-based ``step``."""
    warmup = max(1, int(warmup_fraction * total))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _optimizer(model: Any, lr: float, weight_decay: float) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


@dataclass(frozen=True)
class _Phase:
    """One training phase: which model, how many steps, and its per-step loss."""

    name: str
    index: int  # enters the data-order seed
    steps: int
    batch: int
    lr: float
    loss: Callable[[torch.Tensor], torch.Tensor]  # (batch, length + 1) ids -> scalar loss


def _save_checkpoint(path: Path, model: Any, optimizer: torch.optim.Optimizer, step: int) -> None:
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, model: Any, optimizer: torch.optim.Optimizer) -> int:
    """Restore a checkpoint into ``model``/``optimizer``; returns the next step (0 if none)."""
    if not path.is_file():
        return 0
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
    except Exception as err:  # any unreadable checkpoint: restart the phase
        warnings.warn(
            f"checkpoint {path} is unreadable ({err}); restarting that phase", stacklevel=3
        )
        return 0
    return int(state["step"])


def _train_phase(
    phase: _Phase,
    model: Any,
    tokens: npt.NDArray[np.uint16],
    config: DefaultPairConfig,
    work: Path,
    *,
    progress: bool,
    stop_hook: StopHook | None,
) -> list[float]:
    """Run (or resume) one phase; returns the loss of every step run in this call."""
    optimizer = _optimizer(model, phase.lr, config.weight_decay)
    ckpt = work / f"{phase.name}.ckpt"
    start = _load_checkpoint(ckpt, model, optimizer)
    model.train()
    losses: list[float] = []
    bar = tqdm(
        range(start, phase.steps),
        initial=start,
        total=phase.steps,
        desc=f"default pair: {phase.name}",
        disable=not progress,
    )
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, phase.steps, phase.lr, config.warmup_fraction)
        ids = _batch(tokens, config.seed, phase.index, step, phase.batch, config.context_len)
        loss = phase.loss(ids)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        done = step + 1
        stop = stop_hook is not None and stop_hook(phase.name, done)
        if done % config.checkpoint_every == 0 or stop:
            _save_checkpoint(ckpt, model, optimizer, done)
        if stop and done < phase.steps:
            bar.close()
            raise BuildInterrupted(f"build stopped after {phase.name} step {done}; call again")
    model.eval()
    return losses


def _lm_loss(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    def loss(ids: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=ids[:, :-1]).logits  # (batch, length, vocab)
        return F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())

    return loss


def _distill_loss(
    draft: Any, target: Any, temperature: float, ce_weight: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """T^2 * KL(p^T || q^T) + ce_weight * CE(q, next token), averaged over positions."""

    def loss(ids: torch.Tensor) -> torch.Tensor:
        inputs = ids[:, :-1]
        with torch.no_grad():
            p_logits = target(input_ids=inputs).logits.flatten(0, 1)  # (batch*length, vocab)
        q_logits = draft(input_ids=inputs).logits.flatten(0, 1)  # (batch*length, vocab)
        log_p = F.log_softmax(p_logits / temperature, dim=-1)
        log_q = F.log_softmax(q_logits / temperature, dim=-1)
        kl = F.kl_div(log_q, log_p, log_target=True, reduction="batchmean")
        ce = F.cross_entropy(q_logits, ids[:, 1:].flatten())
        return temperature**2 * kl + ce_weight * ce

    return loss


# --- evaluation --------------------------------------------------------------------------------


@torch.no_grad()
def greedy_acceptance(
    draft: Any,
    target: Any,
    prompts: Sequence[Sequence[int]],
    *,
    gamma: int = 4,
    max_new_tokens: int = 64,
) -> dict[str, float]:
    """Mean accepted draft tokens per round of greedy SD with a fixed budget ``gamma``.

    A plain measurement loop (full forward passes, no KV cache): each round the draft proposes
    ``gamma`` greedy tokens, the target's argmax at each position verifies them, and the
    accepted prefix plus the target's correction/bonus token are appended, so the output is
    the target's greedy decoding.

    Args:
        draft: causal LM proposing tokens.
        target: causal LM verifying them (same vocabulary).
        prompts: token-id lists, each non-empty; prompt + output must fit the models' context.
        gamma: draft tokens per round, >= 1.
        max_new_tokens: tokens generated per prompt.

    Returns:
        ``accepted_per_round`` (mean accepted draft tokens), ``tokens_per_round``
        (accepted + 1), ``acceptance_rate`` (accepted / drafted) and ``n_rounds``.
    """
    if gamma < 1:
        raise ValueError(f"gamma must be >= 1, got {gamma}")
    accepted = rounds = 0
    for prompt in prompts:
        ids = torch.tensor([list(prompt)], dtype=torch.long)  # (1, n)
        n_prompt = ids.shape[1]
        while ids.shape[1] - n_prompt < max_new_tokens:
            proposal = ids
            for _ in range(gamma):
                nxt = draft(input_ids=proposal).logits[:, -1].argmax(-1, keepdim=True)  # (1, 1)
                proposal = torch.cat([proposal, nxt], dim=1)
            verdict = target(input_ids=proposal).logits[0, ids.shape[1] - 1 :].argmax(-1)
            drafted = proposal[0, ids.shape[1] :]  # (gamma,)
            matches = (drafted == verdict[:gamma]).long()
            n_match = int(matches.cumprod(0).sum())
            new = torch.cat([drafted[:n_match], verdict[n_match : n_match + 1]])
            ids = torch.cat([ids, new[None]], dim=1)
            accepted += n_match
            rounds += 1
    return {
        "accepted_per_round": accepted / max(1, rounds),
        "tokens_per_round": (accepted + rounds) / max(1, rounds),
        "acceptance_rate": accepted / max(1, rounds * gamma),
        "n_rounds": float(rounds),
    }


@torch.no_grad()
def held_out_loss(model: Any, tokens: npt.NDArray[np.uint16], length: int, n_windows: int) -> float:
    """Mean next-token cross-entropy (nats/token) over ``n_windows`` consecutive windows."""
    n = min(n_windows, (tokens.shape[0] - 1) // length)
    if n < 1:
        raise ValueError(f"held-out stream of {tokens.shape[0]} tokens is shorter than {length}")
    ids = torch.from_numpy(tokens[: n * length + 1].astype(np.int64))
    x = ids[:-1].view(n, length)  # (n, length)
    y = ids[1:].view(n, length)  # (n, length)
    logits = model(input_ids=x).logits  # (n, length, vocab)
    return float(F.cross_entropy(logits.flatten(0, 1), y.flatten()))


def _evaluate(
    config: DefaultPairConfig, tokenizer: Any, draft: Any, target: Any
) -> dict[str, float]:
    prompt_budget = config.context_len - config.eval_new_tokens - config.eval_gamma - 1
    prompts = [
        tokenizer(p.text, add_special_tokens=False)["input_ids"][-prompt_budget:]
        for p in corpus.held_out_prompts(config.eval_prompts, include_tests=config.include_tests)
    ]
    metrics = greedy_acceptance(
        draft, target, prompts, gamma=config.eval_gamma, max_new_tokens=config.eval_new_tokens
    )
    held_out = encode_corpus(tokenizer, _held_out_texts(config))
    metrics["target_held_out_loss"] = held_out_loss(target, held_out, config.context_len, 32)
    metrics["draft_held_out_loss"] = held_out_loss(draft, held_out, config.context_len, 32)
    return metrics


# --- the build ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _build_tokenizer(config: DefaultPairConfig, out: Path, progress: bool) -> Any:
    from transformers import PreTrainedTokenizerFast

    final = out / "tokenizer"
    if not final.is_dir():
        tokenizer = train_tokenizer(_train_texts(config), config.vocab_size, progress=progress)
        tmp = out / "tokenizer.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, final)
    return PreTrainedTokenizerFast.from_pretrained(final)


def _train_tokens(config: DefaultPairConfig, tokenizer: Any, work: Path) -> npt.NDArray[np.uint16]:
    path = work / "train_tokens.npy"
    if path.is_file():
        with contextlib.suppress(OSError, ValueError):
            tokens: npt.NDArray[np.uint16] = np.load(path)
            return tokens
    tokens = encode_corpus(tokenizer, _train_texts(config))
    if tokens.shape[0] < config.context_len + 2:
        raise ValueError(
            f"context_len must be < {tokens.shape[0] - 1} training tokens, got {config.context_len}"
        )
    tmp = work / "train_tokens.tmp.npy"
    np.save(tmp, tokens)
    os.replace(tmp, path)
    return tokens


def _save_model(model: Any, out: Path, name: str) -> None:
    tmp = out / f"{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    os.replace(tmp, out / name)


def _load_model(path: Path) -> Any:
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel.from_pretrained(path).eval()


def build_default_pair(
    cache_dir: str | Path | None = None,
    *,
    config: DefaultPairConfig | None = None,
    progress: bool = True,
    stop_hook: StopHook | None = None,
) -> Path:
    """Build (or resume building) the default pair; returns its directory.

    Phases, each skipped when its output exists: tokenizer -> token stream -> target training
    -> draft distillation -> evaluation -> manifest (written last; it marks completion).

    Args:
        cache_dir: cache root (the pair lands in ``<cache_dir>/default_pair/<hash>/``); None
            for ``$GELATO_CACHE_DIR`` or the user cache dir.
        config: build configuration; None for the defaults.
        progress: show tqdm progress bars.
        stop_hook: called as ``stop_hook(phase, steps_done)`` after every training step with
            phase ``"target"`` or ``"draft"``; returning True checkpoints and raises
            :class:`BuildInterrupted` (for tests of resumption and for time-sliced builds).

    Raises:
        BuildInterrupted: ``stop_hook`` asked to stop; calling again resumes.
    """
    config = config or DefaultPairConfig()
    out = pair_dir(cache_dir, config)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    elapsed_before = _elapsed_so_far(work)
    with _torch_threads(config.n_threads):
        tokenizer = _build_tokenizer(config, out, progress)
        tokens = _train_tokens(config, tokenizer, work)
        if not (out / "target").is_dir():
            target = _gpt2(
                config, config.target_layers, config.target_width, config.target_heads, config.seed
            )
            phase = _Phase("target", 1, config.target_steps, config.target_batch,
                           config.target_lr, _lm_loss(target))  # fmt: skip
            _run_phase_timed(phase, target, tokens, config, work, progress, stop_hook, started)
            _save_model(target, out, "target")
        target = _load_model(out / "target")  # from disk, so resumed and fresh builds agree
        if not (out / "draft").is_dir():
            draft = _gpt2(
                config, config.draft_layers, config.draft_width, config.draft_heads,
                config.seed + 1,
            )  # fmt: skip
            loss = _distill_loss(draft, target, config.distill_temperature, config.ce_weight)
            phase = _Phase(
                "draft", 2, config.draft_steps, config.draft_batch, config.draft_lr, loss
            )
            _run_phase_timed(phase, draft, tokens, config, work, progress, stop_hook, started)
            _save_model(draft, out, "draft")
        draft = _load_model(out / "draft")
        metrics = _evaluate(config, tokenizer, draft, target)
    build_time_s = elapsed_before + time.time() - started
    manifest = {
        "config": dataclasses.asdict(config),
        "config_hash": config.config_hash(),
        "seed": config.seed,
        "builder_version": BUILDER_VERSION,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_time_s": build_time_s,
        "versions": _versions(),
        "corpus": corpus.corpus_metadata(include_tests=config.include_tests),
        "n_train_tokens": int(tokens.shape[0]),
        "n_params": {
            "target": sum(p.numel() for p in target.parameters()),
            "draft": sum(p.numel() for p in draft.parameters()),
        },
        "metrics": metrics,
        "files": {p.relative_to(out).as_posix(): _sha256(p) for p in _artifact_files(out)},
    }
    _write_json_atomic(out / MANIFEST, manifest)
    shutil.rmtree(work, ignore_errors=True)
    return out


def _elapsed_so_far(work: Path) -> float:
    """Build seconds spent by earlier, interrupted calls (kept in ``work/elapsed.json``)."""
    try:
        return float(json.loads((work / "elapsed.json").read_text())["elapsed_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def _run_phase_timed(
    phase: _Phase,
    model: Any,
    tokens: npt.NDArray[np.uint16],
    config: DefaultPairConfig,
    work: Path,
    progress: bool,
    stop_hook: StopHook | None,
    started: float,
) -> None:
    """Train a phase; on interruption record the elapsed time so the manifest totals it."""
    try:
        _train_phase(phase, model, tokens, config, work, progress=progress, stop_hook=stop_hook)
    except BaseException:
        elapsed = _elapsed_so_far(work) + time.time() - started
        _write_json_atomic(work / "elapsed.json", {"elapsed_s": elapsed})
        raise


def _versions() -> dict[str, str]:
    import tokenizers
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": np.__version__,
    }


def _clear_artifacts(out: Path) -> None:
    (out / MANIFEST).unlink(missing_ok=True)
    for name in ARTIFACT_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)


def load_default_pair(
    cache_dir: str | Path | None = None,
    *,
    config: DefaultPairConfig | None = None,
    rebuild: bool = False,
    progress: bool = True,
) -> ModelPair:
    """The default draft/target pair, built on first use and cached (module docstring).

    Args:
        cache_dir: cache root; None for ``$GELATO_CACHE_DIR`` or the user cache dir.
        config: build configuration; None for the defaults.
        rebuild: discard any cached copy and build afresh.
        progress: show tqdm progress bars while building.

    Returns:
        A :class:`ModelPair` in eval mode on CPU, ids ``gelato/default-{draft,target}@<hash>``,
        ``eos_token_id`` the ``<|endoftext|>`` id.
    """
    from transformers import PreTrainedTokenizerFast

    config = config or DefaultPairConfig()
    out = pair_dir(cache_dir, config)
    problem = None if rebuild else verify_cache(out, config)
    if rebuild:
        _clear_artifacts(out)
        shutil.rmtree(out / "work", ignore_errors=True)  # afresh: no resuming old checkpoints
    elif problem is not None and (out / MANIFEST).exists():
        # A finished build went bad; without a manifest it is an unfinished build: resume it.
        warnings.warn(f"default pair cache is invalid: {problem}; rebuilding", stacklevel=2)
        _clear_artifacts(out)
    if rebuild or problem is not None:
        build_default_pair(cache_dir, config=config, progress=progress)
    try:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(out / "tokenizer")
        target = _load_model(out / "target")
        draft = _load_model(out / "draft")
    except Exception as err:  # checksums passed but a library cannot read it: rebuild once
        warnings.warn(f"default pair in {out} is unreadable ({err}); rebuilding", stacklevel=2)
        _clear_artifacts(out)
        build_default_pair(cache_dir, config=config, progress=progress)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(out / "tokenizer")
        target = _load_model(out / "target")
        draft = _load_model(out / "draft")
    tag = config.config_hash()
    return ModelPair(
        draft=draft,
        target=target,
        tokenizer=tokenizer,
        draft_id=f"gelato/default-draft@{tag}",
        target_id=f"gelato/default-target@{tag}",
        eos_token_id=int(tokenizer.eos_token_id),
    )
