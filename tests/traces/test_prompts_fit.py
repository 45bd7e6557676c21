"""JSONL prompt loader errors; alpha(H) fit on SYNTHETIC data; trace summary."""

from __future__ import annotations

import numpy as np
import pytest

from gelato_env.traces.fit import fit_alpha, fit_alpha_from_trace
from gelato_env.traces.prompts import TextPrompt, load_jsonl_prompts, tokenize_prompts
from gelato_env.traces.summary import summarize

JSONL_ERRORS = [
    ('{"id": 1, "prompt": "a"}\n{"id": 2, "prompt": \n', r":2: invalid JSON"),
    ('{"id": 1}\n', r":1: missing key\(s\) \['prompt'\]"),
    ('{"prompt": "x"}\n', r":1: missing key\(s\) \['id'\]"),
    ("[1, 2]\n", r":1: expected a JSON object"),
    ('{"id": 1, "prompt": ""}\n', r":1: 'prompt' must be a non-empty string"),
    ('{"id": 1, "prompt": "a"}\n\n{"id": "1", "prompt": "b"}\n', r":3: duplicate id '1'"),
    ("\n\n", r"no prompts \(empty prompt set\)"),
]


@pytest.mark.parametrize(("text", "match"), JSONL_ERRORS)
def test_jsonl_errors_name_file_and_line(tmp_path, text, match):
    path = tmp_path / "prompts.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        load_jsonl_prompts(path)
    assert str(path) in str(info.value)


def test_jsonl_ok_and_missing_file(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "prompt": "x = 1"}\n{"id": 7, "prompt": "def f():"}\n')
    assert load_jsonl_prompts(path) == [TextPrompt("a", "x = 1"), TextPrompt("7", "def f():")]
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        load_jsonl_prompts(tmp_path / "nope.jsonl")


class _CharTokenizer:
    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}


def test_tokenize_prompts_keeps_the_tail():
    out = tokenize_prompts([TextPrompt("a", "abcdef")], _CharTokenizer(), max_prompt_tokens=3)
    assert out[0].token_ids == (ord("d"), ord("e"), ord("f"))
    with pytest.raises(ValueError, match="tokenizes to no tokens"):
        tokenize_prompts([TextPrompt("e", " ")], lambda *a, **k: {"input_ids": []})


@pytest.mark.parametrize("method", ["binned_log", "nonlinear"])
@pytest.mark.parametrize(("a", "b"), [(1.0, -0.35), (0.8, -0.6)])
def test_fit_recovers_known_parameters_on_synthetic_data(method, a, b):
    """SYNTHETIC: Bernoulli acceptances drawn with P = a*exp(b*H), H ~ U(0, 4) nats."""
    gen = np.random.default_rng(0)
    h = gen.uniform(0.0, 4.0, size=200_000)
    accepted = (gen.random(h.size) < a * np.exp(b * h)).astype(np.float64)
    fit = fit_alpha(h, accepted, method=method)
    assert fit.a == pytest.approx(a, rel=0.03)
    assert fit.b == pytest.approx(b, abs=0.02)
    assert fit.r2 > (0.95 if method == "binned_log" else 0.05)
    np.testing.assert_allclose(
        fit.alpha(np.array([0.0, 1.0])), np.minimum(1, a * np.exp([0, b])), rtol=0.05
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "magic"}, "method must be one of"),
        ({"n_bins": 1}, "n_bins must be >= 2, got 1"),
    ],
)
def test_fit_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_alpha(np.linspace(0, 1, 10), np.full(10, 0.5), **kwargs)
    with pytest.raises(ValueError, match=r"accept must lie in \[0, 1\]"):
        fit_alpha(np.linspace(0, 1, 10), np.full(10, 2.0))


def test_summary_and_trace_fit(micro_trace):
    s = summarize(micro_trace)
    acc = np.asarray(micro_trace.accept_prob, dtype=np.float64)
    assert s.acceptance == pytest.approx(acc.mean())
    assert s.mean_tokens_by_gamma[0] == 1.0
    assert np.all(np.diff(s.mean_tokens_by_gamma) >= 0)
    leading = np.cumprod(acc, axis=1).sum(axis=1)  # greedy: leading matches per position
    assert s.mean_tokens_by_gamma[-1] == pytest.approx(1.0 + leading.mean())
    assert s.acceptance_by_entropy_quintile.shape == (5,)
    fit = fit_alpha_from_trace(micro_trace)
    assert fit.n_samples == acc.size
    assert np.isfinite([fit.a, fit.b]).all()
