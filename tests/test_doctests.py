"""Every docstring example in the packages runs (``pytest --doctest-modules`` only sees tests/)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules_with_examples() -> list[str]:
    names = []
    for package in ("gelato_env", "agents"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>> " in path.read_text():
                rel = path.relative_to(ROOT).with_suffix("")
                parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
                names.append(".".join(parts))
    return names


MODULES = _modules_with_examples()


def test_the_packages_have_examples() -> None:
    assert {
        "gelato_env.system.radio",
        "gelato_env.traces.rounds",
        "agents.evaluation",
        "agents.results",
    } <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name}: no example found by doctest"
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
