from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

MODULES = ["params", "profiles", "radio", "channel", "payload", "cost", "energy"]


def test_importing_system_imports_no_torch():
    code = (
        "import sys, gelato_env.system; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'transformers'}); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(f"gelato_env.system.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


def test_public_api_is_exported():
    import gelato_env.system as system

    for name in system.__all__:
        assert hasattr(system, name), name
