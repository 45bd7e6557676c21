from __future__ import annotations

import subprocess
import sys


def test_importing_system_imports_no_torch():
    code = (
        "import sys, gelato_env.system; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'transformers'}); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
