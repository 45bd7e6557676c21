"""Record per-position statistics of real rollouts once; replay them exactly (docs/design.md §6).

- :mod:`~gelato_env.traces.store`: the on-disk format (``.npy`` columns + ``header.json``),
  :class:`Trace`, :func:`load_trace`.
- :mod:`~gelato_env.traces.replay`: :class:`ReplayBackend`, a ``RoundBackend`` over a trace.
- :mod:`~gelato_env.traces.recorder`: :func:`record_trace` (imports torch; import it directly).
- :mod:`~gelato_env.traces.prompts`: prompt sets (held-out, JSONL, GSM8K).
- :mod:`~gelato_env.traces.fit`: the alpha(H) = a*exp(b*H) fit and GELATO's calibration.
- :mod:`~gelato_env.traces.summary`: :func:`summarize`, the summary statistics of a trace.
- :mod:`~gelato_env.traces.default`: the cached default trace (``default_trace_path``).

This package imports no torch at import time.
"""

from gelato_env.traces.prompts import PromptTokens, TextPrompt, load_jsonl_prompts
from gelato_env.traces.replay import ReplayBackend
from gelato_env.traces.store import SCHEMA_VERSION, Trace, TraceError, TraceHeader, load_trace

__all__ = [
    "SCHEMA_VERSION",
    "PromptTokens",
    "ReplayBackend",
    "TextPrompt",
    "Trace",
    "TraceError",
    "TraceHeader",
    "load_jsonl_prompts",
    "load_trace",
]
