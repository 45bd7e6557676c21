"""Per-position rollouts of a draft/target pair: what a trace records (docs/design.md §6).

For a prompt x the target decodes y_0..y_{L-1}. For every output position t the draft then
continues for G = ``gamma_max`` steps from the correct prefix s_t = x + y_<t, giving per step j
the draft token d_{t,j}, the entropy, max-probability and top-p set size of q_{t,j}, and the
target's verdict on d_{t,j} along the draft's own continuation: the greedy match bit (target
argmax given s_t + d_{t,<j} equals d_{t,j}) at T = 0, min(1, p/q) at T > 0.

Two implementations produce these columns:

* :func:`rollout_prefix_cached` (the default). The target's y comes from lossless speculative
  decoding itself (:class:`~gelato_env.sd.engine.SpeculativeDecoder`), whose KV caches then hold
  the whole sequence s = x + y. A batch of positions t0..t0+B-1 shares that one cache: it is
  expanded to B rows and row b hides every key at or after its own prefix end with the
  attention mask, so each row feeds only its new tokens (explicit ``position_ids``). At T > 0
  the draft runs G single-token steps per batch of positions. At T = 0 a greedy continuation
  depends on its context only: one draft forward over y gives the draft's step at every s_t,
  a row follows it while its tokens match y, and the draft runs G - 1 steps once per point
  where its argmax leaves y (a few per prompt), shared by every row that reaches that point.
  The target runs one forward over at most G tokens per row, and at T = 0 only from the first
  mismatch with y (the target's argmax along a matching prefix *is* y), once per such point.
* :func:`rollout_reencode`, the reference kept to test the fast one against: it re-encodes
  every position's whole prefix in left-padded batches and decodes y token by token.

Both give the same trace on the same pair up to float rounding between differently shaped
forwards (~1e-7 in float32), which can move a token only at an exact near-tie. Greedy leading
match bits are always taken against the recorded y, so a trace is internally consistent;
disagreements of the batched target pass with y are counted (``n_inconsistent``).

Over 500 lines because the fast recorder and its reference share their step statistics and
their KV-cache helpers, and are read side by side (the reference is what the fast one is
tested against).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from transformers import DynamicCache

from gelato_env.sd.engine import SpeculativeDecoder, cache_kwarg, cache_layers_kv
from gelato_env.sd.exit_rules import NoExit
from gelato_env.sd.models import ModelPair
from gelato_env.sd.verify import entropy_max_prob, log_probs, topp_size

Columns = dict[str, npt.NDArray[Any]]
LayerKV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values (1, H, N, D)


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    """What to roll out per prompt (the recorder's ``RecordConfig`` builds one).

    Attributes:
        gamma_max: G, draft steps recorded per position.
        max_new_tokens: output tokens per prompt at most (EOS may end sooner).
        temperature: T >= 0; 0 is greedy.
        p_top: top-p mass for the top-p set size.
        batch_positions: B, positions per batched forward.
        decode_budget: drafting budget of the speculative decoding that produces y at T = 0
            (speed only: SD is lossless, so y is the target's greedy output for any budget).
    """

    gamma_max: int
    max_new_tokens: int
    temperature: float
    p_top: float
    batch_positions: int
    decode_budget: int = 4


@dataclass(frozen=True, slots=True)
class _Spec:
    gamma_max: int
    temperature: float
    p_top: float
    width: int  # V, the shared vocabulary logits are cut to


def step_stats(
    logits: torch.Tensor, temperature: float, p_top: float, generator: Any
) -> dict[str, torch.Tensor]:
    """Token choice and statistics of q = softmax(logits / T) (T = 0: softmax(logits), argmax).

    Uses the live engine's own formulas (:mod:`gelato_env.sd.verify`, float32 log-softmax), so
    recorded entropies equal the engine's up to batched-forward rounding.

    Args:
        logits: shape ``(B, V)``, already cut to the shared vocabulary.
        temperature: T >= 0.
        p_top: top-p mass for the top-p set size.
        generator: ``torch.Generator`` for sampling, or None.

    Returns:
        ``token``, ``entropy``, ``max_prob``, ``topp_size``, ``q_token``, each shape ``(B,)``.
    """
    log_q = log_probs(logits, temperature)  # (B, V) float32
    if temperature == 0.0:
        token = logits.argmax(dim=-1)
    else:
        token = torch.multinomial(log_q.exp(), 1, generator=generator).squeeze(-1)
    h_mp = entropy_max_prob(log_q)  # (B, 2)
    return {
        "token": token,
        "entropy": h_mp[:, 0],
        "max_prob": h_mp[:, 1],
        "topp_size": topp_size(log_q, p_top),
        "q_token": log_q.exp().gather(-1, token[:, None]).squeeze(-1),
    }


def _stack(steps: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Per-step dicts of ``(B,)`` tensors -> one dict of ``(B, G)`` tensors."""
    return {k: torch.stack([s[k] for s in steps], dim=1) for k in steps[0]}


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


# -- the prefix-cached recorder ---------------------------------------------------------------


def _forward_from(
    model: Any, kv: LayerKV | None, seq: Sequence[int], start: int
) -> tuple[torch.Tensor, LayerKV]:
    """Logits of ``seq[start:]`` (shape ``(len(seq) - start, V_model)``) and the KV of ``seq``.

    ``kv`` holds at least ``start`` keys of ``seq`` (more are dropped) or is None (``start``
    must then be 0).
    """
    cache = DynamicCache(config=model.config)
    if kv is not None:
        for layer, (k, v) in enumerate(kv):
            cache.update(k[:, :, :start], v[:, :, :start], layer)
    ids = torch.tensor([list(seq[start:])], dtype=torch.long, device=_device(model))
    out = model(input_ids=ids, use_cache=True, **{cache_kwarg(model): cache})
    return out.logits[0], cache_layers_kv(cache)


def _extend_kv(model: Any, kv: LayerKV | None, seq: Sequence[int], n_needed: int) -> LayerKV:
    """KV of ``seq[:n_needed]``: ``kv`` (a prefix of it, or None) extended by one forward."""
    n_have = 0 if kv is None else int(kv[0][0].shape[-2])
    if n_have >= n_needed:
        assert kv is not None
        return kv
    cache = DynamicCache(config=model.config)
    if kv is not None:
        for layer, (k, v) in enumerate(kv):
            cache.update(k, v, layer)
    device = _device(model)
    ids = torch.tensor([list(seq[n_have:n_needed])], dtype=torch.long, device=device)
    model(input_ids=ids, use_cache=True, logits_to_keep=1, **{cache_kwarg(model): cache})
    return cache_layers_kv(cache)


class _SharedPrefixRows:
    """B rows that share one cached sequence, each row seeing its own prefix of it.

    Row b sees keys ``[0, visible[b])`` of the shared cache ``kv`` (the keys after its prefix
    end are hidden by the attention mask), then its own tokens at positions ``visible[b],
    visible[b] + 1, ...``. Rows are right padded to the longest, so no real token attends to
    padding; :meth:`step` continues every row by one token.
    """

    def __init__(self, model: Any, kv: LayerKV, visible: Sequence[int]) -> None:
        self.model = model
        self.device = _device(model)
        self.n_rows = len(visible)
        self.next_pos = torch.tensor(list(visible), dtype=torch.long, device=self.device)  # (B,)
        n_ctx = int(self.next_pos.max())
        self.cache = DynamicCache(config=model.config)
        for layer, (k, v) in enumerate(kv):  # (1, H, N, D) -> (B, H, n_ctx, D)
            shape = (self.n_rows, -1, -1, -1)
            self.cache.update(k[:, :, :n_ctx].expand(shape), v[:, :, :n_ctx].expand(shape), layer)
        keys = torch.arange(n_ctx, device=self.device)
        self.mask = (keys[None, :] < self.next_pos[:, None]).long()  # (B, n_ctx)

    def forward(self, rows: Sequence[Sequence[int]] | torch.Tensor) -> torch.Tensor:
        """Feed each row its tokens; returns logits of shape ``(B, w, V_model)``."""
        if isinstance(rows, torch.Tensor):  # (B, w) without padding
            ids, new_mask = rows, torch.ones_like(rows)
        else:
            width = max(len(row) for row in rows)
            ids = torch.zeros((self.n_rows, width), dtype=torch.long, device=self.device)
            new_mask = torch.zeros_like(ids)
            for b, row in enumerate(rows):
                ids[b, : len(row)] = torch.tensor(list(row), dtype=torch.long)
                new_mask[b, : len(row)] = 1
        width = int(ids.shape[1])
        positions = self.next_pos[:, None] + torch.arange(width, device=self.device)  # (B, w)
        self.mask = torch.cat([self.mask, new_mask], dim=1)  # (B, n_keys)
        out = self.model(
            input_ids=ids,
            attention_mask=self.mask,
            position_ids=positions,
            use_cache=True,
            **{cache_kwarg(self.model): self.cache},
        )
        self.next_pos = self.next_pos + width
        return out.logits


def _draft_rows(
    draft: Any, kv: LayerKV, seq: Sequence[int], ts: range, n_prompt: int, spec: _Spec, gen: Any
) -> dict[str, torch.Tensor]:
    """The draft's G-step continuation from every prefix s_t, t in ``ts``: ``(B, G)`` tensors."""
    visible = [n_prompt + t - 1 for t in ts]  # row t sees s_t minus its last token ...
    rows = _SharedPrefixRows(draft, kv, visible)
    tokens = torch.tensor([[seq[v]] for v in visible], device=rows.device)  # ... fed now
    steps = []
    for _ in range(spec.gamma_max):
        stats = step_stats(
            rows.forward(tokens)[:, -1, : spec.width], spec.temperature, spec.p_top, gen
        )
        steps.append(stats)
        tokens = stats["token"][:, None]
    return _stack(steps)


def _draft_greedy_shared(
    draft: Any, seq: Sequence[int], n_prompt: int, spec: _Spec
) -> dict[str, torch.Tensor]:
    """The greedy draft's G-step continuation from every prefix s_t: ``(L, G)`` tensors (T = 0).

    A greedy continuation depends on its context only. Let a_u be the draft's argmax after s_u
    (u = 0..L; s_L = x + y): one forward over y gives every a_u and its statistics. Row t runs
    along y while its tokens match y: steps j = 0..k_t have context s_{t+j} exactly, where
    k_t is the first j with a_{t+j} != y_{t+j} or t + j = L. From the divergence point
    p = t + k_t on, the context s_p + a_p + ... is the same for every row that reaches p, so
    the draft runs G - 1 cached steps once per divergence point, not once per row.
    """
    n_out, g = len(seq) - n_prompt, spec.gamma_max
    kv = _extend_kv(draft, None, seq, n_prompt - 1) if n_prompt > 1 else None
    logits, kv_full = _forward_from(draft, kv, seq, n_prompt - 1)
    along = step_stats(logits[:, : spec.width], 0.0, spec.p_top, None)  # (L + 1,) each
    a = along["token"].cpu().numpy()
    y = np.asarray(seq[n_prompt:], dtype=np.int64)
    diverges = np.ones(n_out + 1, dtype=bool)  # u = L always "diverges": y ends there
    diverges[:n_out] = a[:n_out] != y
    next_div = np.empty(n_out + 1, dtype=np.int64)  # smallest u' >= u that diverges
    nxt = n_out
    for u in range(n_out, -1, -1):
        nxt = u if diverges[u] else nxt
        next_div[u] = nxt
    k = next_div[:n_out] - np.arange(n_out)  # (L,) steps served by the pass: j <= k_t
    points = np.unique(next_div[:n_out][k < g - 1])  # divergence points some row runs past
    stats: dict[str, torch.Tensor] = along
    if len(points) and g > 1:
        rows = _SharedPrefixRows(draft, kv_full, [n_prompt + int(p) for p in points])
        tokens = along["token"][torch.as_tensor(points)][:, None]  # a_p, fed after s_p
        steps = []
        for _ in range(g - 1):
            step = step_stats(rows.forward(tokens)[:, -1, : spec.width], 0.0, spec.p_top, None)
            steps.append(step)
            tokens = step["token"][:, None]
        after = _stack(steps)  # (n_points, G - 1): e_1 .. e_{G-1} per point
        stats = {
            name: torch.cat([along[name], after[name].reshape(-1).to(along[name].dtype)])
            for name in along
        }
    # Row t, step j reads the pass at u = t + j while j <= k_t, else step j - k_t of its point.
    t_idx, j_idx = np.arange(n_out)[:, None], np.arange(g)[None, :]
    point_row = np.searchsorted(points, np.minimum(next_div[:n_out], n_out))[:, None]
    from_point = (n_out + 1) + point_row * (g - 1) + (j_idx - k[:, None] - 1)
    index = np.where(j_idx <= k[:, None], t_idx + j_idx, from_point)
    flat = torch.as_tensor(index.reshape(-1))
    return {name: col[flat].reshape(n_out, g) for name, col in stats.items()}


def _target_verdicts(
    target: Any,
    kv: LayerKV,
    seq: Sequence[int],
    n_prompt: int,
    drafts: npt.NDArray[np.int64],
    q_token: npt.NDArray[np.float64],
    spec: _Spec,
    batch: int,
) -> tuple[npt.NDArray[np.float64], int]:
    """The target's verdict on every draft token along the draft's continuation, ``(L, G)``.

    At T = 0 a row starts at its first "open" step m: the first j with d_{t,j} != y_{t+j-1}
    or t + j - 1 >= L. Steps before m match y, and the target's argmax after a matching
    prefix is y itself, so their bits are 1 without a forward; the row feeds the token before
    d_{t,m} and d_{t,m..G-1} and reads G - m + 1 argmaxes. At T > 0 every row starts at m = 1.

    Returns:
        The verdicts and how many first-mismatch bits the batched pass disagreed with y on.
    """
    n_out, g = drafts.shape
    y = np.asarray(seq[n_prompt:], dtype=np.int64)
    verdict = np.zeros((n_out, g), dtype=np.float64)
    jobs: list[tuple[int, int]] = []  # (t, m) with m 0-based: the first step to judge
    for t in range(n_out):
        m = 0
        if spec.temperature == 0.0:
            while m < g and t + m < n_out and drafts[t, m] == y[t + m]:
                m += 1
            verdict[t, :m] = 1.0
        if m < g:
            jobs.append((t, m))
    jobs, copies = _shared_jobs(jobs, drafts) if spec.temperature == 0.0 else (jobs, [])
    n_bad = 0
    for start in range(0, len(jobs), batch):
        part = jobs[start : start + batch]
        visible = [n_prompt + t + m - 1 for t, m in part]
        rows = [
            [seq[v], *drafts[t, m : g - 1].tolist()]
            for (t, m), v in zip(part, visible, strict=True)
        ]
        logits = _SharedPrefixRows(target, kv, visible).forward(rows)[..., : spec.width]
        for b, (t, m) in enumerate(part):
            row = logits[b, : g - m]  # (G - m, V): predicts d_{t,m..G-1} (0-based)
            d = torch.as_tensor(drafts[t, m:], device=row.device)
            if spec.temperature == 0.0:
                bits = (row.argmax(dim=-1) == d).double().cpu().numpy()
                if t + m < n_out:  # a real mismatch with y: the stored bit is y's, 0
                    n_bad += int(bits[0] == 1.0)
                    bits[0] = 0.0
                verdict[t, m:] = bits
            else:
                p = log_probs(row, spec.temperature).exp().gather(-1, d[:, None]).squeeze(-1)
                q = np.maximum(q_token[t, m:], np.finfo(np.float32).tiny)  # d ~ q: q(d) > 0
                verdict[t, m:] = np.minimum(p.double().cpu().numpy() / q, 1.0)
    for (t, m), (src_t, src_m) in copies:  # same context and continuation as a judged row
        verdict[t, m:] = verdict[src_t, src_m : src_m + g - m]
    return verdict, n_bad


def _shared_jobs(
    jobs: list[tuple[int, int]], drafts: npt.NDArray[np.int64]
) -> tuple[list[tuple[int, int]], list[tuple[tuple[int, int], tuple[int, int]]]]:
    """Greedy jobs to run, and the jobs whose verdicts copy a run job's (T = 0).

    Jobs (t, m) and (t', m') with t + m = t' + m' = p start from the same context s_p; when
    their remaining draft tokens agree (a greedy draft's continuation depends on its context
    only), the longer job's target logits judge the shorter one's tokens too.
    """
    g = drafts.shape[1]
    longest: dict[int, tuple[int, int]] = {}
    for t, m in jobs:
        if t + m not in longest or m < longest[t + m][1]:
            longest[t + m] = (t, m)
    run, copies = [], []
    for t, m in jobs:
        src_t, src_m = longest[t + m]
        same = np.array_equal(drafts[t, m:], drafts[src_t, src_m : src_m + g - m])
        if (t, m) == (src_t, src_m) or not same:
            run.append((t, m))
        else:
            copies.append(((t, m), (src_t, src_m)))
    return run, copies


def decode_greedy_batch(
    pair: ModelPair, prompts: Sequence[Sequence[int]], max_new_tokens: int
) -> list[tuple[list[int], LayerKV]]:
    """The target's greedy outputs of several prompts decoded together, with their KV caches.

    A decoding step of a few prompts reads the target's weights once for all of them, which on
    a CPU costs about what one prompt's step costs (decoding is memory-bound), so decoding B
    prompts in one left-padded batch is several times faster per prompt than speculative
    decoding each alone. Positions count from each prompt's first token, so a row's keys equal
    its unpadded decoding's up to float rounding.

    Returns:
        Per prompt: y (ending at EOS or after ``max_new_tokens``) and the target's KV of
        ``prompt + y[:-1]`` (shape ``(1, H, N, D)`` per layer).
    """
    target, width, eos = pair.target, pair.shared_vocab_size(), pair.eos_token_id
    rows = [[int(i) for i in p] for p in prompts]
    ids, mask, positions = _left_pad(rows, _device(target))
    cache = DynamicCache(config=target.config)
    kw = {cache_kwarg(target): cache}
    out = target(
        input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
        logits_to_keep=1, **kw,
    )  # fmt: skip
    ys: list[list[int]] = [[] for _ in rows]
    done = [False] * len(rows)
    while True:
        tokens = out.logits[:, -1, :width].argmax(dim=-1)  # (B,)
        for b, tok in enumerate(tokens.tolist()):
            if not done[b]:
                ys[b].append(tok)
                done[b] = tok == eos or len(ys[b]) == max_new_tokens
        if all(done):
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
        positions = positions[:, -1:] + 1
        out = target(
            input_ids=tokens[:, None], attention_mask=mask, position_ids=positions,
            use_cache=True, **kw,
        )  # fmt: skip
    width_pad = ids.shape[1]
    result = []
    for b, (row, y) in enumerate(zip(rows, ys, strict=True)):
        start = width_pad - len(row)
        stop = width_pad + len(y) - 1  # the keys of prompt + y[:-1]
        kv = [(k[b : b + 1, :, start:stop].clone(), v[b : b + 1, :, start:stop].clone())
              for k, v in cache_layers_kv(cache)]  # fmt: skip
        result.append((y, kv))
    return result


def _decode_target(
    pair: ModelPair, prompt: list[int], rollout: RolloutSpec, gen: Any
) -> tuple[list[int], LayerKV | None]:
    """The output y of one prompt and whatever target KV of x + y the decoding left, or None.

    T = 0: speculative decoding with a fixed budget (lossless, so y is the target's greedy
    output), leaving the target's cache. T > 0: token-by-token sampling from the target with
    ``gen`` (the reference's random stream, so both recorders sample the same y).
    """
    if rollout.temperature > 0.0:
        return _sample_target(pair, prompt, rollout, gen), None
    decoder = SpeculativeDecoder.from_pair(
        pair,
        gamma_max=rollout.gamma_max,
        temperature=0.0,
        p_top=rollout.p_top,
        max_new_tokens=rollout.max_new_tokens,
    )
    y = decoder.generate(prompt, min(rollout.decode_budget, rollout.gamma_max), NoExit())
    return y, decoder.prefix_kv("target")


def rollout_prefix_cached(
    pair: ModelPair,
    prompt_ids: Sequence[int],
    rollout: RolloutSpec,
    *,
    generator: Any = None,
    decoded: tuple[list[int], LayerKV] | None = None,
) -> tuple[Columns, int]:
    """Roll one prompt out with shared prefix caches (see the module docstring).

    Args:
        pair: the draft/target models (eval mode).
        prompt_ids: the prompt's token ids (non-empty).
        rollout: what to roll out.
        generator: ``torch.Generator`` for sampling (T > 0).
        decoded: T = 0 only: the target's greedy y and its KV, from
            :func:`decode_greedy_batch` (None: decode y here by speculative decoding).

    Returns:
        Columns ``target_tokens`` ``(L,)`` and ``draft_tokens``, ``entropy``, ``max_prob``,
        ``topp_size``, ``accept_prob`` ``(L, G)``; and the count of batched-pass disagreements.
    """
    prompt = [int(i) for i in prompt_ids]
    spec = _Spec(rollout.gamma_max, rollout.temperature, rollout.p_top, pair.shared_vocab_size())
    target_cached: LayerKV | None
    if decoded is not None:
        if rollout.temperature != 0.0:
            raise ValueError("decoded y is for greedy rollouts (temperature 0) only")
        y, target_cached = decoded
    else:
        y, target_cached = _decode_target(pair, prompt, rollout, generator)
    seq, n_prompt, n_out = prompt + y, len(prompt), len(y)
    target_kv = _extend_kv(pair.target, target_cached, seq, len(seq) - 1)
    if spec.temperature == 0.0:
        # The draft encodes x + y afresh rather than reuse a decoding's cache, so its
        # statistics do not depend on how y was decoded (alone by SD or in a batch).
        shared = _draft_greedy_shared(pair.draft, seq, n_prompt, spec)
        cont = {k: v.cpu().numpy() for k, v in shared.items()}
    else:
        draft_kv = _extend_kv(pair.draft, None, seq, len(seq) - 1)
        parts: list[dict[str, torch.Tensor]] = []
        for t0 in range(0, n_out, rollout.batch_positions):
            ts = range(t0, min(n_out, t0 + rollout.batch_positions))
            parts.append(_draft_rows(pair.draft, draft_kv, seq, ts, n_prompt, spec, generator))
        cont = {k: torch.cat([p[k] for p in parts]).cpu().numpy() for k in parts[0]}
    verdict, n_bad = _target_verdicts(
        pair.target,
        target_kv,
        seq,
        n_prompt,
        cont["token"],
        cont["q_token"],
        spec,
        rollout.batch_positions,
    )
    return _columns(y, cont, verdict), n_bad


def _columns(y: Sequence[int], cont: dict[str, Any], verdict: npt.NDArray[Any]) -> Columns:
    return {
        "target_tokens": np.asarray(y, dtype=np.int64),
        "draft_tokens": np.asarray(cont["token"]),
        "entropy": np.asarray(cont["entropy"]),
        "max_prob": np.asarray(cont["max_prob"]),
        "topp_size": np.asarray(cont["topp_size"]),
        "accept_prob": np.asarray(verdict, dtype=np.float64),
    }


# -- the reference recorder: re-encode every prefix -------------------------------------------


def _left_pad(rows: list[list[int]], device: Any) -> tuple[Any, Any, Any]:
    """Left-pad token rows: ids, attention mask and position ids, each shape ``(B, max_len)``."""
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for b, row in enumerate(rows):
        ids[b, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[b, width - len(row) :] = 1
    positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
    return ids, mask, positions


def _sample_target(pair: ModelPair, prompt: list[int], rollout: RolloutSpec, gen: Any) -> list[int]:
    """The target's own decoding y_0..y_{L-1}, token by token with a KV cache."""
    target, width = pair.target, pair.shared_vocab_size()
    cache = DynamicCache(config=target.config)
    ids = torch.tensor([prompt], device=_device(target))
    y: list[int] = []
    while True:
        out = target(
            input_ids=ids, use_cache=True, logits_to_keep=1, **{cache_kwarg(target): cache}
        )
        logits = out.logits[:, -1, :width]  # (1, V)
        tok = int(step_stats(logits, rollout.temperature, rollout.p_top, gen)["token"][0])
        y.append(tok)
        if tok == pair.eos_token_id or len(y) == rollout.max_new_tokens:
            return y
        ids = torch.tensor([[tok]], device=ids.device)


def _draft_reencode(
    draft: Any, contexts: list[list[int]], spec: _Spec, gen: Any
) -> dict[str, torch.Tensor]:
    """The draft's own G-step continuation of every context; tensors of shape ``(B, G)``."""
    ids, mask, positions = _left_pad(contexts, _device(draft))
    cache = DynamicCache(config=draft.config)
    kw = {cache_kwarg(draft): cache}
    out = draft(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **kw,
    )
    steps = []
    for j in range(spec.gamma_max):
        stats = step_stats(out.logits[:, -1, : spec.width], spec.temperature, spec.p_top, gen)
        steps.append(stats)
        if j + 1 == spec.gamma_max:
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)  # (B, len + 1)
        positions = positions[:, -1:] + 1  # (B, 1)
        out = draft(
            input_ids=stats["token"][:, None],
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **kw,
        )
    return _stack(steps)


def _verify_reencode(
    target: Any,
    contexts: list[list[int]],
    drafts: torch.Tensor,
    q_token: torch.Tensor,
    spec: _Spec,
) -> torch.Tensor:
    """Target verdict on each draft token along the draft's continuation, shape ``(B, G)``."""
    g = spec.gamma_max
    rows = [c + d for c, d in zip(contexts, drafts.tolist(), strict=True)]
    ids, mask, positions = _left_pad(rows, drafts.device)
    logits = target(
        input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=g + 1
    ).logits[:, :g, : spec.width]  # (B, G, V): the positions that predict d_1..d_G
    if spec.temperature == 0.0:
        return (logits.argmax(dim=-1) == drafts).double()
    p = log_probs(logits, spec.temperature).exp()  # (B, G, V)
    p_token = p.gather(-1, drafts[..., None]).squeeze(-1)  # (B, G)
    q_token = q_token.clamp_min(torch.finfo(q_token.dtype).tiny)  # d ~ q, so q(d) > 0
    return (p_token / q_token).clamp_max(1.0).double()


def _consistent_bits(
    bits: npt.NDArray[np.float64], drafts: npt.NDArray[np.int64], y: npt.NDArray[np.int64], t0: int
) -> tuple[npt.NDArray[np.float64], int]:
    """Take leading greedy match bits against the recorded y; count the rows that disagreed."""
    bits = bits.copy()
    n_bad = 0
    for b in range(bits.shape[0]):
        t = t0 + b
        for j in range(bits.shape[1]):
            if t + j >= y.shape[0]:
                break
            match = float(drafts[b, j] == y[t + j])
            if bits[b, j] != match:
                n_bad += 1
                bits[b, j] = match
            if not match:
                break
    return bits, n_bad


def rollout_reencode(
    pair: ModelPair, prompt_ids: Sequence[int], rollout: RolloutSpec, *, generator: Any = None
) -> tuple[Columns, int]:
    """The reference rollout: y token by token, every prefix re-encoded (slow, simple).

    Same arguments and returns as :func:`rollout_prefix_cached`.
    """
    prompt = [int(i) for i in prompt_ids]
    spec = _Spec(rollout.gamma_max, rollout.temperature, rollout.p_top, pair.shared_vocab_size())
    y = _sample_target(pair, prompt, rollout, generator)
    y_np = np.asarray(y, dtype=np.int64)
    parts: list[dict[str, Any]] = []
    verdicts: list[npt.NDArray[np.float64]] = []
    n_bad = 0
    for t0 in range(0, len(y), rollout.batch_positions):
        contexts = [prompt + y[:t] for t in range(t0, min(len(y), t0 + rollout.batch_positions))]
        cont = _draft_reencode(pair.draft, contexts, spec, generator)
        bits = _verify_reencode(pair.target, contexts, cont["token"], cont["q_token"], spec)
        bits_np = bits.cpu().numpy()
        if spec.temperature == 0.0:
            bits_np, bad = _consistent_bits(bits_np, cont["token"].cpu().numpy(), y_np, t0)
            n_bad += bad
        parts.append({k: v.cpu().numpy() for k, v in cont.items()})
        verdicts.append(bits_np)
    cont_all = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return _columns(y, cont_all, np.concatenate(verdicts)), n_bad


ROLLOUTS = {"prefix_cached": rollout_prefix_cached, "reencode": rollout_reencode}

__all__ = [
    "ROLLOUTS",
    "RolloutSpec",
    "decode_greedy_batch",
    "rollout_prefix_cached",
    "rollout_reencode",
    "step_stats",
]
