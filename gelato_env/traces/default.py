"""The default trace: Qwen2.5-Coder 0.5B -> 1.5B on HumanEval, shipped inside the package.

Recording it takes hours on a CPU, so the trace lives in the package as data
(``gelato_env/data/traces/<DEFAULT_TRACE_NAME>/``, a few MB) and the env, the main job and
training use it without any download. Its header pins how it was made: the GGUF packages,
versions and sha256s, dtype, device, torch/transformers versions (``header.provenance``).

Re-recording (or resuming an interrupted recording, chunk by chunk) is one command,
``python scripts/record_traces.py out_dir=gelato_env/data/traces/<DEFAULT_TRACE_NAME>``; the
recording settings are :data:`DEFAULT_RECORD` and the pair is loaded in
:data:`DEFAULT_DTYPE`. The live default backend uses the same pair, dtype and prompt tokens,
so live and replay rounds can be compared one to one (``make verify-trace``).
"""

from __future__ import annotations

from pathlib import Path

from gelato_env.traces.recorder import RecordConfig
from gelato_env.traces.store import HEADER_FILE, Trace, TraceError, load_trace

DEFAULT_TRACE_NAME = "humaneval-qwen2.5-coder-0.5b-1.5b-fp32"
#: [D] fp32: on CPUs without native bf16 matmuls, batched bf16 forwards are ~4x slower (measured
#: with benchmarks/bench_record.py); the dtype is part of the trace (bf16 and fp32 differ).
DEFAULT_DTYPE = "float32"
DEFAULT_RECORD = RecordConfig(gamma_max=8, max_new_tokens=128, temperature=0.0, p_top=0.9)
RECORD_COMMAND = (
    f"python scripts/record_traces.py out_dir=gelato_env/data/traces/{DEFAULT_TRACE_NAME}"
)


def default_trace_path() -> Path:
    """Directory of the shipped default trace.

    Raises:
        TraceError: the package holds no finalized default trace (a broken install or checkout).
    """
    path = Path(__file__).resolve().parent.parent / "data" / "traces" / DEFAULT_TRACE_NAME
    if not (path / HEADER_FILE).is_file():
        raise TraceError(
            f"{path}: the default trace is missing from the package (reinstall gelato-env, or "
            f"record it: {RECORD_COMMAND})"
        )
    return path


def default_trace() -> Trace:
    """The shipped default trace, loaded (memory-mapped, milliseconds)."""
    return load_trace(default_trace_path())
