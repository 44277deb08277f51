"""The repository's scripts run with `#!/usr/bin/env python3`, which on a fresh machine has none of
dwarfgo's dependencies: re-run the script with the repository's virtualenv (made by scripts/test or
the README's install command) when the running Python lacks them, or say in one line what to do."""

from __future__ import annotations

import os
import sys


def ensure_dependencies() -> None:
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        import capstone  # noqa: F401
        import elftools  # noqa: F401
        import typer  # noqa: F401
    except ImportError as missing:
        venv = os.path.join(repo, ".venv")
        python = os.path.join(venv, "bin", "python")
        if os.path.exists(python) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
            os.execv(python, [python, *sys.argv])
        sys.exit(f"{os.path.basename(sys.argv[0])}: {missing.name} is not installed for {sys.executable}; "
                 f"run scripts/test once (it makes {venv}), or run this script with a Python that has "
                 "dwarfgo's dependencies")
