"""Threat: a dependency with a known vulnerability. `python3 dev.py audit` (a CI step) reads
PyPI's advisories for every installed package; these tests hold how it judges what it reads,
on project answers shaped like PyPI's JSON API (a real PyPI cannot be made to publish an
advisory on demand). The step itself, against the live API, runs in `.ci/run`."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
assert _spec is not None and _spec.loader is not None
dev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dev)


def project(latest: str, *advisories: dict[str, Any]) -> dict[str, Any]:
    return {"info": {"name": "pkg", "version": latest}, "vulnerabilities": list(advisories)}


def advisory(ident: str, *fixed: str, withdrawn: str | None = None) -> dict[str, Any]:
    return {"id": ident, "aliases": [f"CVE-{ident}"], "fixed_in": list(fixed), "withdrawn": withdrawn,
            "summary": f"summary of {ident}", "details": "", "link": "", "source": "osv"}


def test_an_advisory_on_the_installed_latest_release_is_found() -> None:
    found, unverified, unknown = dev.judge([("ecdsa", "0.19.2")], [project("0.19.2", advisory("PYSEC-1"))])
    assert len(found) == 1 and "ecdsa 0.19.2" in found[0] and "PYSEC-1" in found[0] and "CVE-PYSEC-1" in found[0]
    assert "none yet" in found[0]
    assert unverified == [] and unknown == []


def test_a_clean_latest_release_passes() -> None:
    assert dev.judge([("h11", "0.16.0")], [project("0.16.0")]) == ([], [], [])


def test_an_older_release_is_unverified_not_clean() -> None:
    found, unverified, _ = dev.judge([("h11", "0.14.0")], [project("0.16.0")])
    assert found == []
    assert unverified == ["h11 0.14.0 (latest 0.16.0)"]


def test_an_unfixed_advisory_counts_against_older_releases_too() -> None:
    found, unverified, _ = dev.judge([("ecdsa", "0.18.0")], [project("0.19.2", advisory("PYSEC-2"))])
    assert len(found) == 1 and "ecdsa 0.18.0" in found[0]
    assert unverified == ["ecdsa 0.18.0 (latest 0.19.2)"]


def test_a_fixed_advisory_is_not_pinned_on_an_older_release_it_may_not_reach() -> None:
    found, unverified, _ = dev.judge([("pkg", "1.0")], [project("2.1", advisory("PYSEC-3", "2.1"))])
    assert found == [] and unverified == ["pkg 1.0 (latest 2.1)"]


def test_a_withdrawn_advisory_is_ignored() -> None:
    found, _, _ = dev.judge([("pkg", "2.0")], [project("2.0", advisory("PYSEC-4", withdrawn="2026-01-01"))])
    assert found == []


def test_a_package_pypi_does_not_know_is_listed() -> None:
    assert dev.judge([("private-thing", "0.1")], [None]) == ([], [], ["private-thing 0.1"])


def answers(**projects: dict[str, Any]) -> Any:
    """A stand-in for PyPI's JSON API: the given projects, and the canary with its advisory."""
    known = {dev.CANARY: project("0.19.2", advisory("PYSEC-C")), **projects}
    return lambda name: known.get(name)


def test_strict_mode_fails_on_what_it_could_not_verify(monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setattr(dev, "installed", lambda: [("h11", "0.14.0")])
    monkeypatch.setattr(dev, "pypi_project", answers(h11=project("0.16.0")))
    assert dev.audit(strict=False) == 0
    assert dev.audit(strict=True) == 1
    assert "unverified, not the latest release: h11 0.14.0" in capsys.readouterr().out


def test_a_vulnerability_fails_the_audit(monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setattr(dev, "installed", lambda: [("ecdsa", "0.19.2"), ("h11", "0.16.0")])
    monkeypatch.setattr(dev, "pypi_project", answers(ecdsa=project("0.19.2", advisory("PYSEC-1")), h11=project("0.16.0")))
    assert dev.audit(strict=False) == 1
    assert "VULNERABLE ecdsa 0.19.2" in capsys.readouterr().out


def test_a_source_that_shows_no_advisory_for_the_canary_audits_nothing(monkeypatch: Any, capsys: Any) -> None:
    """Threat: a mirror that serves the project JSON with `vulnerabilities` always empty — every
    package would look clean. The canary's known advisory must be seen, or the audit says it
    could not audit (exit 2), not that all is well."""
    monkeypatch.setattr(dev, "installed", lambda: [("h11", "0.16.0")])
    monkeypatch.setattr(dev, "pypi_project", lambda name: project("0.19.2" if name == dev.CANARY else "0.16.0"))
    assert dev.audit(strict=False) == 2
    out = capsys.readouterr().out
    assert "cannot be trusted" in out and "no known vulnerability" not in out
