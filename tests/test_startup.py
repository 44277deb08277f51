"""What a command imports: `funcs` reads no machine code and writes no C or bpftrace, so it must
not pay for importing capstone, rich or the emitters (issue 12: start-up is most of a warm run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO

DEMO = REPO / "fixtures" / "bin" / "demo-go1.22-amd64"
HEAVY = ("capstone", "rich", "dwarfgo.cheaders", "dwarfgo.emit", "dwarfgo.runner")


def test_funcs_imports_no_disassembler_progress_display_or_emitter():
    script = ("import json, sys\n"
              "from dwarfgo.cli import app\n"
              "try:\n"
              f"    app(['funcs', {str(DEMO)!r}, 'main.checkKey', '--no-cache'])\n"
              "except SystemExit as e:\n"
              "    assert not e.code, e.code\n"
              f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r})))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0].endswith("main.checkKey  func checkKey(key string) error")  # fixtures/demo/main.go
    assert json.loads(out[-1]) == []
