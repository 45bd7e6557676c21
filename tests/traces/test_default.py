from __future__ import annotations

from dataclasses import replace

from gelato_env.traces.default import DEFAULT_RECORD, default_trace_path


def test_default_trace_path_honours_cache_env_and_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("GELATO_CACHE_DIR", str(tmp_path))
    path = default_trace_path(build=False)
    assert path.parent == tmp_path / "traces"
    assert default_trace_path(build=False) == path
    assert default_trace_path(n_prompts=10, build=False) != path
    assert default_trace_path(config=replace(DEFAULT_RECORD, temperature=0.7), build=False) != path
    assert (
        default_trace_path(tmp_path / "other", build=False).parent == tmp_path / "other" / "traces"
    )
