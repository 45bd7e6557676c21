from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from gelato_env.sd.device import best_device, resolve_device, resolve_dtype
from gelato_env.sd.engine import SpeculativeDecoder
from gelato_env.sd.models import check_compatible, load_pair, pair_from_models

from .conftest import sharp_gpt2

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def word_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=words[2]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=words[0], eos_token=words[1], unk_token=words[2]
    )


VOCAB = ["<s>", "</s>", "<unk>"] + [f"w{i}" for i in range(61)]


def save(model, tokenizer, path: Path) -> Path:  # type: ignore[no-untyped-def]
    model.save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    return path


def test_load_pair_round_trip(tmp_path: Path) -> None:
    tok = word_tokenizer(VOCAB)
    draft = save(sharp_gpt2(64, 1, 16, seed=1), tok, tmp_path / "draft")
    target = save(sharp_gpt2(64, 2, 16, seed=2), tok, tmp_path / "target")
    pair = load_pair(draft, target, device="cpu", dtype="fp32")
    assert pair.draft_id == str(draft)
    assert pair.target_id == str(target)
    assert pair.eos_token_id == 1
    assert not pair.draft.training
    assert not pair.target.training
    assert pair.target.dtype == torch.float32
    prompt = pair.tokenizer("w3 w4 w5")["input_ids"]
    assert prompt == [6, 7, 8]
    dec = SpeculativeDecoder.from_pair(pair, gamma_max=2, max_new_tokens=6)
    ids = torch.tensor([prompt])
    expected = pair.target.generate(
        ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=6
    )
    assert dec.generate(prompt, 2) == expected[0, 3:].tolist()


def test_load_pair_rejects_tokenizer_mismatch(tmp_path: Path) -> None:
    other = [*VOCAB[:-1], "zzz"]
    draft = save(sharp_gpt2(64, 1, 16, seed=1), word_tokenizer(VOCAB), tmp_path / "d")
    target = save(sharp_gpt2(64, 1, 16, seed=2), word_tokenizer(other), tmp_path / "t")
    with pytest.raises(
        ValueError,
        match=r"tokenizers of draft '.*/d' and target '.*/t' differ.*draft-only .*\['w60'\]",
    ):
        load_pair(draft, target, device="cpu")


def test_load_pair_missing_paths(tmp_path: Path) -> None:
    target = save(sharp_gpt2(64, 1, 16, seed=2), None, tmp_path / "t")
    with pytest.raises(FileNotFoundError, match=r"draft model path '.*nowhere' does not exist"):
        load_pair(tmp_path / "nowhere", target, device="cpu")
    with pytest.raises(FileNotFoundError, match="target model path"):
        load_pair(target, str(tmp_path / "gone"), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError, match=r"cannot load draft model '.*empty'"):
        load_pair(tmp_path / "empty", target, device="cpu")
    with pytest.raises(OSError, match="cannot load target model 'no-such-org/no-such-model'"):
        load_pair(target, "no-such-org/no-such-model", device="cpu")


def test_check_compatible_names_both_models() -> None:
    small, large = sharp_gpt2(32, 1, 16, seed=1), sharp_gpt2(64, 1, 16, seed=2)
    with pytest.raises(
        ValueError, match=r"draft 'tiny' has config.vocab_size 32 but target 'big' has 64"
    ):
        check_compatible(small, large, draft_id="tiny", target_id="big")
    with pytest.raises(ValueError, match="vocab_size 32 but target 'target' has 64"):
        pair_from_models(small, large)
    with pytest.raises(ValueError, match="shared vocabulary"):
        SpeculativeDecoder(small, large)
    check_compatible(large, sharp_gpt2(64, 2, 16, seed=3))  # same vocabulary: no error


def test_pair_from_models_defaults(micro_pair) -> None:  # type: ignore[no-untyped-def]
    pair = pair_from_models(*micro_pair)
    assert pair.eos_token_id == 1  # from the target's config
    assert pair.tokenizer is None
    assert pair_from_models(*micro_pair, eos_token_id=5).eos_token_id == 5


def test_device_and_dtype_resolution() -> None:
    cpu = torch.device("cpu")
    assert resolve_device("cpu") == cpu
    assert resolve_device(None) == best_device()
    assert resolve_dtype(None, cpu) == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    assert resolve_dtype(torch.float64, cpu) == torch.float64
    with pytest.raises(ValueError, match="dtype must be 'auto' or one of"):
        resolve_dtype("int8", cpu)
    with pytest.raises(ValueError, match="floating-point"):
        resolve_dtype(torch.int64, cpu)
    with pytest.warns(UserWarning, match="float16 on CPU"):
        resolve_dtype("fp16", cpu)
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("banana")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_greedy_on_gpu_matches_target(perturbed_pair) -> None:  # type: ignore[no-untyped-def]
    draft, target = (m.to("cuda") for m in perturbed_pair)
    try:
        dec = SpeculativeDecoder(draft, target, gamma_max=4, max_new_tokens=20)
        assert dec.device.type == "cuda"
        ids = torch.tensor([[5, 6, 7]], device="cuda")
        expected = target.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=20
        )
        assert dec.generate([5, 6, 7], 4) == expected[0, 3:].tolist()
    finally:
        draft.to("cpu")
        target.to("cpu")


def _padded_pair(tmp_path: Path, draft_width: int, target_width: int):  # type: ignore[no-untyped-def]
    """Random micro models (synthetic) padded past one 64-id tokenizer by different amounts,
    as Qwen2.5-0.5B (151,936 logits) and Qwen2.5-7B (152,064) are past their 151,665 ids."""
    tok = word_tokenizer(VOCAB)
    draft = save(sharp_gpt2(draft_width, 1, 16, seed=1), tok, tmp_path / "draft")
    target = save(sharp_gpt2(target_width, 2, 48, seed=7), tok, tmp_path / "target")
    return load_pair(draft, target, device="cpu", dtype="fp32")


@pytest.mark.parametrize(("draft_width", "target_width"), [(64, 72), (80, 64)])
def test_padded_vocabularies_decode_like_the_target(
    tmp_path: Path, draft_width: int, target_width: int
) -> None:
    pair = _padded_pair(tmp_path, draft_width, target_width)
    assert pair.vocab_size == pair.shared_vocab_size() == 64
    prompt = pair.tokenizer("w3 w4 w5")["input_ids"]
    ids = torch.tensor([prompt])
    # the reference: the target's own greedy decoding, padded ids (no token) masked out
    expected = pair.target.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=24,
        suppress_tokens=list(range(64, target_width)) or None,
    )[0, 3:].tolist()
    for budget in (1, 3, 6):
        dec = SpeculativeDecoder.from_pair(pair, gamma_max=6, max_new_tokens=24)
        assert dec.vocab_size == 64
        assert dec.generate(prompt, budget) == expected, budget


def test_padded_pair_records_a_trace_over_the_shared_vocabulary(tmp_path: Path) -> None:
    from gelato_env.traces.prompts import PromptTokens
    from gelato_env.traces.recorder import RecordConfig, record_trace

    pair = _padded_pair(tmp_path, 64, 72)
    prompts = [PromptTokens(f"p{i}", (3 + i, 4 + i, 5 + i)) for i in range(2)]
    cfg = RecordConfig(gamma_max=4, max_new_tokens=12, batch_positions=8)
    trace, _ = record_trace(pair, prompts, tmp_path / "trace", cfg, progress=False)
    assert trace.header.vocab_size == 64
    dec = SpeculativeDecoder.from_pair(pair, gamma_max=4, max_new_tokens=12)
    for i, prompt in enumerate(prompts):
        assert trace.output_of(i).tolist() == dec.generate(list(prompt.token_ids), 0)


def test_padding_needs_one_tokenizer_whose_ids_fit(tmp_path: Path) -> None:
    tok = word_tokenizer(VOCAB)  # ids 0..63
    with pytest.raises(ValueError, match="no tokenizers to tell padding"):
        pair_from_models(sharp_gpt2(64, 1, 16, seed=1), sharp_gpt2(72, 1, 16, seed=2))
    with pytest.raises(ValueError, match="the tokenizer's ids reach 63, past the smaller width"):
        pair_from_models(sharp_gpt2(48, 1, 16, seed=1), sharp_gpt2(72, 1, 16, seed=2), tok)
    with pytest.raises(ValueError, match="shared vocabulary"):
        SpeculativeDecoder(sharp_gpt2(64, 1, 16, seed=1), sharp_gpt2(72, 1, 16, seed=2))
    padded = pair_from_models(sharp_gpt2(64, 1, 16, seed=1), sharp_gpt2(72, 1, 16, seed=2), tok)
    assert padded.vocab_size == 64
    with pytest.raises(ValueError, match=r"vocab_size must be an int in \[1, 64\]"):
        SpeculativeDecoder(padded.draft, padded.target, vocab_size=65)
