"""Where models run: the best available device and a dtype that suits it (docs/design.md §8).

CUDA when present, else CPU. Default dtypes: bfloat16 on GPUs that support it (float16 on older
ones), float32 on CPU (half precision on CPU is slow and numerically poor, so it only warns).
"""

from __future__ import annotations

import warnings

import torch

_DTYPE_NAMES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def best_device() -> torch.device:
    """The first CUDA device when one is available, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device``; None or ``"auto"`` picks :func:`best_device`.

    Raises:
        ValueError: ``device`` names CUDA but no CUDA device is available, or is not a device.
    """
    if device is None or device == "auto":
        return best_device()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda[:i]' or None, got {device!r}"
        ) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The floating-point dtype to load models in on ``device``.

    Args:
        dtype: a ``torch.dtype``, one of ``float32|fp32|bfloat16|bf16|float16|fp16``, or None /
            ``"auto"`` for the device default (bf16 or fp16 on CUDA, fp32 on CPU).
        device: where the models will run.

    Raises:
        ValueError: an unknown dtype name or a non-floating dtype.
    """
    if dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if isinstance(dtype, str):
        if dtype not in _DTYPE_NAMES:
            raise ValueError(
                f"dtype must be 'auto' or one of {sorted(_DTYPE_NAMES)}, got {dtype!r}"
            )
        dtype = _DTYPE_NAMES[dtype]
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    if device.type == "cpu" and dtype == torch.float16:
        warnings.warn(
            "float16 on CPU is slow and imprecise; float32 is the CPU default", stacklevel=2
        )
    return dtype
