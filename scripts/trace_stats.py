"""Print the statistics of a recorded trace (the numbers the README quotes for the shipped one).

Loads a trace (checksum verified), summarizes it with
:func:`gelato_env.traces.summary.summarize` -- prompts and positions, how outputs ended, output
lengths, greedy acceptance, tokens per round E[N] by draft length, entropy quantiles, the
alpha(H) = a * exp(b * H) fit, the pair and provenance from the header -- and prints a table.
Every number is computed in ``summarize``; this script only formats it.

    python scripts/trace_stats.py                     # the shipped trace (make trace-stats)
    python scripts/trace_stats.py --trace traces/my-trace
    python scripts/trace_stats.py --json stats.json   # also write the summary as JSON

A missing or invalid trace is a one-line error naming the path (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gelato_env.traces.store import Trace
    from gelato_env.traces.summary import TraceSummary

#: width of the row labels of the printed table
LABEL = 30


def _row(label: str, value: str) -> str:
    return f"{label:<{LABEL}}{value}"


def _numbers(values: object, spec: str, width: int = 6) -> str:
    return "".join(f"{v:>{width}{spec}}" for v in values)  # type: ignore[attr-defined]


def format_summary(s: TraceSummary) -> str:
    """The printed table of a summary (formatting only: every number comes from ``s``)."""
    models = s.provenance.get("models", {})
    dtype, device = s.provenance.get("target_dtype", "?"), s.provenance.get("device", "?")
    mode = "greedy" if s.temperature == 0.0 else "sampled"
    g = s.gamma_max
    lines = [
        _row("trace", s.path),
        _row("draft", s.draft_id),
        _row("target", s.target_id),
    ]
    for role in ("draft", "target"):
        if isinstance(models.get(role), dict) and "packages" in models[role]:
            lines.append(_row(f"  {role} packages", str(models[role]["packages"])))
    lines += [
        _row("recording", f"{s.prompt_set}, T = {s.temperature:g} ({mode}), gamma_max {g}, "
             f"max_new_tokens {s.max_new_tokens}, p_top {s.p_top:g}, {dtype} on {device}"),
        _row("checksum", s.checksum),
        _row("prompts", f"{s.n_prompts} ({s.n_ended_by_eos} end at EOS, "
             f"{s.n_ended_by_cap} at the max_new_tokens cap)"),
        _row("positions", f"{s.n_positions:,} ({s.column_bytes / 1e6:.1f} MB of columns)"),
        _row("output length, tokens", f"mean {s.output_length_mean:.1f}, median "
             f"{s.output_length_median:g}, min {s.output_length_min}, max {s.output_length_max}"),
        _row("acceptance", f"{s.acceptance:.3f} (mean over {s.n_positions * g:,} "
             f"(position, step) entries)"),
        "",
        _row("gamma", _numbers(range(g + 1), "d")),
        _row("E[N] per round (RoundTable)", _numbers(s.tokens_per_round_by_gamma, ".2f")),
        _row("  accepted drafts per round", _numbers(s.accepted_per_round_by_gamma, ".2f")),
        _row("E[N] uncapped", _numbers(s.mean_tokens_by_gamma, ".2f")),
        _row("acceptance of step gamma", " " * 6 + _numbers(s.acceptance_by_step, ".3f")),
        "",
    ]  # fmt: skip
    for label, q, mean in (
        ("entropy, first step (nats)", s.first_step_entropy_quantiles, s.first_step_entropy_mean),
        ("entropy, all steps (nats)", s.entropy_quantiles, s.entropy_mean),
    ):
        lines.append(_row(label, f"p10 {q[0]:.3g}, median {q[1]:.3g}, p90 {q[2]:.3g}, "
                                 f"mean {mean:.3g}"))  # fmt: skip
    fit = s.alpha_fit
    if fit is None:
        lines.append(_row("alpha(H) fit", "none (acceptance does not vary with entropy)"))
    else:
        text = (f"{fit.a:.3f} * exp({fit.b:.3f} H), R^2 {fit.r2:.3f} ({fit.method}, "
                f"{fit.n_bins} bins, {fit.n_samples:,} samples)")  # fmt: skip
        lines.append(_row("alpha(H) fit", text))
    lines.append(_row("Spearman(acceptance, H)", f"{s.spearman_entropy:.3f}"))
    lines.append(_row("Spearman(acceptance, max q)", f"{s.spearman_max_prob:.3f}"))
    return "\n".join(lines)


def _open(path_arg: str | None) -> Trace:
    """The trace to summarize; raises ``TraceError``/``OSError`` naming the path."""
    from gelato_env.traces.default import default_trace_path
    from gelato_env.traces.store import TraceError, load_trace

    path = default_trace_path() if path_arg is None else Path(path_arg)
    if not path.exists():
        raise TraceError(f"{path}: no such trace directory")
    if not path.is_dir():
        raise TraceError(f"{path}: not a trace directory")
    return load_trace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", metavar="PATH", help="trace directory (default: shipped)")
    parser.add_argument("--json", metavar="OUT", help="also write the summary to this JSON file")
    args = parser.parse_args(argv)

    from gelato_env.storage import write_bytes_atomic
    from gelato_env.traces.store import TraceError
    from gelato_env.traces.summary import summarize

    if args.json is not None and not Path(args.json).resolve().parent.is_dir():
        print(f"error: {args.json}: the folder of the JSON output does not exist", file=sys.stderr)
        return 2
    try:
        trace = _open(args.trace)
    except (TraceError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else repr(exc)
        print(f"error: {message}", file=sys.stderr)
        return 2
    summary = summarize(trace)
    print(format_summary(summary))
    if args.json is not None:
        text = json.dumps(summary.to_dict(), indent=1, sort_keys=True) + "\n"
        write_bytes_atomic(Path(args.json), text.encode())
        print(f"summary written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
