"""The peers' own environments, apart from TwinHub's: a venv and a node_modules folder.

    python -m loadtests.peers.install [--force]

- loadtests/peers/.venv: the Python peers' packages, pinned in requirements.txt (Starlette,
  uvicorn, python-socketio, Django Channels, channels_redis...) and matplotlib for the plots.
- loadtests/peers/node_modules: `ws` and `socket.io`, as package-lock.json pins them (`npm ci`;
  `npm install` writes the lock file the first time).

Idempotent: each environment carries the SHA-256 of the file it was made from and is left alone
while that file is unchanged, so `python -m loadtests peers` calls this on every run at the cost
of two hashes. Both folders are git-ignored. Raises InstallError (with the tool's last lines) if
a step fails; nothing is ever installed into TwinHub's own environment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = HERE / "requirements.txt"
NODE_MODULES = HERE / "node_modules"
PACKAGE_JSON = HERE / "package.json"
PACKAGE_LOCK = HERE / "package-lock.json"
_PY_STAMP = VENV / ".twinhub-requirements.sha256"
_NODE_STAMP = NODE_MODULES / ".twinhub-package-lock.sha256"
STEP_TIMEOUT = 900.0  # s, per pip or npm call: a cold install of everything takes a minute or two


class InstallError(RuntimeError):
    """A pip, venv or npm step failed or took longer than STEP_TIMEOUT."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(argv: list[str], what: str) -> None:
    print(f"peers: {what}: {' '.join(argv)}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(argv, cwd=HERE, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{what} failed: {exc}") from exc
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise InstallError(f"{what} failed with {done.returncode}:\n{tail}")


def python_env(force: bool = False) -> Path:
    """Make (or keep) the peers' venv; return its interpreter."""
    wanted = _sha256(REQUIREMENTS)
    if not force and PYTHON.exists() and _PY_STAMP.exists() and _PY_STAMP.read_text().strip() == wanted:
        return PYTHON
    if force and VENV.exists():
        shutil.rmtree(VENV)
    if not PYTHON.exists():
        # The base interpreter, not TwinHub's venv's (a venv made from a venv still links to it).
        _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(VENV)], "venv")
    _run([str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(REQUIREMENTS)],
         "pip install")
    _PY_STAMP.write_text(wanted + "\n")
    return PYTHON


def node_env(force: bool = False) -> Path:
    """Make (or keep) node_modules from package-lock.json; return the folder."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise InstallError("node and npm are needed for the Node peers (Node.js 18 or later)")
    if not PACKAGE_LOCK.exists():  # the first time only: the lock file is committed after
        _run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"], "npm install (writes package-lock.json)")
    wanted = _sha256(PACKAGE_LOCK)
    if not force and _NODE_STAMP.exists() and _NODE_STAMP.read_text().strip() == wanted:
        return NODE_MODULES
    _run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], "npm ci")
    _NODE_STAMP.write_text(wanted + "\n")
    return NODE_MODULES


def versions() -> dict[str, str | None]:
    """What the peers run on: the Python packages of their venv and the Node packages, by name."""
    out: dict[str, str | None] = {}
    if PYTHON.exists():
        done = subprocess.run(  # noqa: S603
            [str(PYTHON), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        wanted = {"starlette", "uvicorn", "websockets", "uvloop", "python-socketio", "python-engineio", "django",
                  "channels", "channels-redis", "redis", "msgpack", "matplotlib"}
        for line in done.stdout.splitlines():
            name, _, version = line.partition("==")
            if name.lower() in wanted:
                out[name.lower()] = version
    for name in ("ws", "socket.io", "engine.io"):
        package = NODE_MODULES / name / "package.json"
        if package.exists():
            out[f"npm:{name}"] = json.loads(package.read_text())["version"]
    if shutil.which("node"):
        out["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10,  # noqa: S607
                                     check=False).stdout.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="remake both environments from scratch")
    parser.add_argument("--python-only", action="store_true", help="the venv only (no Node peers)")
    args = parser.parse_args(argv)
    try:
        print(f"peers venv: {python_env(args.force)}")
        if not args.python_only:
            print(f"peers node_modules: {node_env(args.force)}")
    except InstallError as exc:
        print(f"peers: {exc}", file=sys.stderr)
        return 1
    for name, version in versions().items():
        print(f"  {name} {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
