"""The import graph (``scripts/import_graph.py``) has no upward arrow and no circle (design §1)."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.conftest import load_script


@pytest.fixture(scope="module")
def import_graph() -> ModuleType:
    return load_script("import_graph")


def test_the_tree_has_no_upward_arrow_and_no_circle(import_graph: ModuleType) -> None:
    edges = import_graph.graph()
    assert {"gelato_env.env", "agents.gelato", "scripts.evaluate"} <= set(edges)
    assert "gelato_env.sd" in edges["gelato_env.traces.recorder"] or any(
        dst.startswith("gelato_env.sd.") for dst in edges["gelato_env.traces.recorder"]
    )
    assert import_graph.upward(edges) == []
    assert import_graph.circles(edges) == []
    assert import_graph.main([]) == 0


def test_the_checks_find_a_circle_and_an_upward_arrow(import_graph: ModuleType) -> None:
    edges = {
        "gelato_env.system.a": {"gelato_env.env"},  # system imports the env: upward
        "gelato_env.env": {"gelato_env.vector"},
        "gelato_env.vector": {"gelato_env.env"},  # a circle of two
        "agents.x": {"gelato_env.env"},
    }
    assert import_graph.upward(edges) == [("gelato_env.system.a", "gelato_env.env")]
    assert import_graph.circles(edges) == [["gelato_env.env", "gelato_env.vector"]]


def test_layers(import_graph: ModuleType) -> None:
    expected = {
        "gelato_env.storage": "base",
        "gelato_env._version": "base",
        "gelato_env.sd.engine": "sd",
        "gelato_env.vector.env": "env",
        "gelato_env": "env",
        "agents.gelato": "agents",
        "scripts.train": "scripts",
    }
    assert {m: import_graph.layer_of(m) for m in expected} == expected
