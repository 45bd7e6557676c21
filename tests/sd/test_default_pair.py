from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from gelato_env.sd import default_pair as dp
from gelato_env.sd.corpus import read_source, split_files
from gelato_env.sd.models import ModelPair

# A TINY build (synthetic-quality models, seconds on CPU): exercises the machinery only.
TINY = dp.DefaultPairConfig(
    vocab_size=300,
    max_train_files=6,
    context_len=64,
    target_layers=1,
    target_width=32,
    target_heads=2,
    target_steps=6,
    target_batch=2,
    draft_width=16,
    draft_steps=4,
    draft_batch=2,
    checkpoint_every=2,
    eval_prompts=2,
    eval_new_tokens=8,
    eval_gamma=2,
)


def _state(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_weights(a: Any, b: Any) -> None:
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gelato_cache")
    dp.load_default_pair(root, config=TINY, progress=False)
    return root


def test_build_writes_artifacts_and_manifest(tiny_cache: Path) -> None:
    out = dp.pair_dir(tiny_cache, TINY)
    assert out.parent.name == "default_pair"
    assert out.name == TINY.config_hash()
    for rel in ("tokenizer/tokenizer.json", "target/model.safetensors", "draft/model.safetensors"):
        assert (out / rel).is_file(), rel
    assert not (out / "work").exists()
    manifest = dp.read_manifest(out)
    assert manifest["config"]["vocab_size"] == 300
    assert manifest["seed"] == TINY.seed
    assert manifest["corpus"]["python_version"]
    assert set(manifest["files"]) == {
        p.relative_to(out).as_posix() for p in dp._artifact_files(out)
    }
    assert manifest["build_time_s"] > 0
    metrics = manifest["metrics"]
    assert 0.0 <= metrics["accepted_per_round"] <= TINY.eval_gamma
    assert metrics["tokens_per_round"] == pytest.approx(metrics["accepted_per_round"] + 1)


def test_pair_shares_vocab_and_sets_ids(tiny_cache: Path) -> None:
    pair = dp.load_default_pair(tiny_cache, config=TINY, progress=False)
    assert isinstance(pair, ModelPair)
    assert pair.target.config.vocab_size == pair.draft.config.vocab_size == len(pair.tokenizer)
    assert pair.target.config.n_layer == TINY.target_layers
    assert pair.draft.config.n_embd == TINY.draft_width
    assert pair.eos_token_id == pair.tokenizer.convert_tokens_to_ids(dp.SPECIAL_TOKEN) == 0
    assert pair.draft_id == f"gelato/default-draft@{TINY.config_hash()}"
    assert pair.target_id == f"gelato/default-target@{TINY.config_hash()}"
    assert not pair.target.training
    assert not pair.draft.training


def test_tokenizer_round_trips_code(tiny_cache: Path) -> None:
    tokenizer = dp.load_default_pair(tiny_cache, config=TINY, progress=False).tokenizer
    _, held_out = split_files()
    text = read_source(held_out[0])[:2000] + "\n\tx = 'ünïcødé' # 🐍\n"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert max(ids) < TINY.vocab_size
    assert tokenizer.decode(ids) == text


def test_second_load_reuses_cache(tiny_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = dp.pair_dir(tiny_cache, TINY)
    before = (out / dp.MANIFEST).stat().st_mtime_ns

    def no_build(*args: Any, **kwargs: Any) -> Path:
        raise AssertionError("load_default_pair rebuilt an intact cache")

    monkeypatch.setattr(dp, "build_default_pair", no_build)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        dp.load_default_pair(tiny_cache, config=TINY, progress=False)
    assert (out / dp.MANIFEST).stat().st_mtime_ns == before


@pytest.mark.parametrize("damage", ["corrupt", "delete"])
def test_damaged_weights_rebuild_with_warning(tmp_path: Path, damage: str) -> None:
    first = dp.load_default_pair(tmp_path, config=TINY, progress=False)
    weights = dp.pair_dir(tmp_path, TINY) / "draft" / "model.safetensors"
    if damage == "corrupt":
        weights.write_bytes(b"\x00" * 64 + weights.read_bytes()[64:])
    else:
        weights.unlink()
    with pytest.warns(UserWarning, match=r"draft/model\.safetensors"):
        second = dp.load_default_pair(tmp_path, config=TINY, progress=False)
    assert dp.verify_cache(dp.pair_dir(tmp_path, TINY), TINY) is None
    # Same seed, same config: the rebuild reproduces the weights exactly.
    _assert_same_weights(first.draft, second.draft)
    _assert_same_weights(first.target, second.target)


def test_unreadable_manifest_triggers_rebuild(tmp_path: Path) -> None:
    dp.build_default_pair(tmp_path, config=TINY, progress=False)
    manifest = dp.pair_dir(tmp_path, TINY) / dp.MANIFEST
    manifest.write_text("{not json")
    with pytest.warns(UserWarning, match="manifest.json"):
        dp.load_default_pair(tmp_path, config=TINY, progress=False)
    assert json.loads(manifest.read_text())["config_hash"] == TINY.config_hash()


def test_interrupted_build_resumes_to_identical_weights(tiny_cache: Path, tmp_path: Path) -> None:
    reference = dp.load_default_pair(tiny_cache, config=TINY, progress=False)
    stops = {("target", 3), ("draft", 1)}

    def hook(phase: str, step: int) -> bool:
        if (phase, step) in stops:
            stops.discard((phase, step))
            return True
        return False

    with pytest.raises(dp.BuildInterrupted, match="target step 3"):
        dp.build_default_pair(tmp_path, config=TINY, progress=False, stop_hook=hook)
    work = dp.pair_dir(tmp_path, TINY) / "work"
    assert (work / "target.ckpt").is_file()
    assert not (dp.pair_dir(tmp_path, TINY) / "target").exists()
    with pytest.raises(dp.BuildInterrupted, match="draft step 1"):
        dp.build_default_pair(tmp_path, config=TINY, progress=False, stop_hook=hook)
    assert (dp.pair_dir(tmp_path, TINY) / "target").is_dir()
    dp.build_default_pair(tmp_path, config=TINY, progress=False, stop_hook=hook)
    resumed = dp.load_default_pair(tmp_path, config=TINY, progress=False)
    _assert_same_weights(reference.target, resumed.target)
    _assert_same_weights(reference.draft, resumed.draft)


def test_cache_dir_from_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(dp.CACHE_ENV_VAR, str(tmp_path))
    assert dp.pair_dir(config=TINY) == tmp_path / "default_pair" / TINY.config_hash()
    assert dp.pair_dir(tmp_path / "other", TINY).parent.parent == tmp_path / "other"
    monkeypatch.delenv(dp.CACHE_ENV_VAR)
    assert dp.default_cache_root().name == "gelato"


def test_config_hash_tracks_every_field() -> None:
    assert TINY.config_hash() == dp.DefaultPairConfig(**{**TINY.__dict__}).config_hash()
    assert TINY.config_hash() != dp.DefaultPairConfig(**{**TINY.__dict__, "seed": 1}).config_hash()
    assert len(dp.DefaultPairConfig().config_hash()) == 12


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("vocab_size", 100, "vocab_size must be >= 258"),
        ("vocab_size", 70000, "vocab_size must be <= 65535"),
        ("target_steps", 0, "target_steps must be >= 1, got 0"),
        ("draft_batch", 1.5, "draft_batch must be an int"),
        ("target_heads", 3, "target_heads must divide target_width"),
        ("target_lr", 0.0, "target_lr must be a finite number > 0"),
        ("ce_weight", -1.0, "ce_weight must be a finite number >= 0"),
        ("warmup_fraction", 1.0, r"warmup_fraction must be in \[0, 1\)"),
        ("max_train_files", 0, "max_train_files must be >= 1 or None"),
        ("context_len", 20, "context_len must be >= eval_new_tokens"),
    ],
)
def test_config_validation(field: str, value: Any, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        dp.DefaultPairConfig(**{**TINY.__dict__, field: value})


def test_greedy_acceptance_identical_models_accept_everything(micro_pair: Any) -> None:
    _, target = micro_pair
    metrics = dp.greedy_acceptance(target, target, [[2, 3, 4], [5]], gamma=3, max_new_tokens=9)
    assert metrics["accepted_per_round"] == 3.0
    assert metrics["acceptance_rate"] == 1.0
    assert metrics["n_rounds"] == 6.0


def test_greedy_acceptance_bounds_and_validation(micro_pair: Any) -> None:
    draft, target = micro_pair
    metrics = dp.greedy_acceptance(draft, target, [[2, 3, 4]], gamma=4, max_new_tokens=12)
    assert 0.0 <= metrics["accepted_per_round"] <= 4.0
    with pytest.raises(ValueError, match="gamma must be >= 1, got 0"):
        dp.greedy_acceptance(draft, target, [[2]], gamma=0)


@pytest.mark.slow
def test_full_default_pair_accepts_enough(tmp_path: Path) -> None:
    pair = dp.load_default_pair(progress=False)
    manifest = dp.read_manifest(dp.pair_dir())
    assert manifest["metrics"]["accepted_per_round"] >= 1.4
    assert pair.target.config.vocab_size == 4096
