"""Files over real HTTP (docs/protocol.md, "Files"): a member uploads, the server decides the
type by the content, strips a photo of its metadata before anyone can read it back, keeps each
content once, and refuses — keeping nothing — what is too large, empty, of a refused type, lying
about its type, or past the project's quota. Who may upload is the policy's; an unattached file
is its uploader's alone."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest
from PIL import Image

from realtime.services import files as files_service
from tests.conftest import login

GPS_LATITUDE = (48.0, 51.0, 24.06)  # where the pupil lives: must not leave the server


def _photo_with_gps(width: int = 640, height: int = 480) -> bytes:
    image = Image.new("RGB", (width, height), (30, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0xA431] = "SERIAL-0042-XYZ"  # BodySerialNumber
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", GPS_LATITUDE, "E", (2.0, 21.0, 7.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def _auth(http, world, who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, world.users[who].username)}"}


async def _upload(http, world, who: str | dict[str, str], name: str, body: bytes):
    auth = who if isinstance(who, dict) else await _auth(http, world, who)
    return await http.post(f"/api/spaces/{world.space_id}/files", params={"name": name},
                           headers={**auth, "content-type": "application/octet-stream"}, content=body, timeout=60)


def _kept(server) -> list[Path]:
    """Every blob in the server's store (the local backend), and what uploads left behind."""
    data = Path(server.settings.data_dir)
    return [p for p in data.rglob("*") if p.is_file() and ("files" in p.parts or "uploads" in p.parts)]


async def test_a_pupils_photo_loses_its_gps_position_before_anyone_reads_it(world, http):
    photo = _photo_with_gps()
    assert b"SERIAL-0042-XYZ" in photo and b"GPS" in photo or b"\x88\x25" in photo
    r = await _upload(http, world, "pupil_member", "river.jpg", photo)
    assert r.status_code == 201, r.text
    f = r.json()
    assert (f["kind"], f["media_type"], f["width"], f["height"], f["thumbnail"]) == ("image", "image/jpeg", 640, 480, True)
    assert f["name"] == "river.jpg" and f["uploader"] == world.users["pupil_member"].id

    got = await http.get(f"/api/files/{f['id']}", headers=await _auth(http, world, "pupil_member"))
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in got.headers["content-security-policy"]
    assert got.headers["content-disposition"].startswith("inline")
    assert int(got.headers["content-length"]) == len(got.content) == f["size"]
    kept = Image.open(io.BytesIO(got.content))
    assert dict(kept.getexif()) == {} and kept.size == (640, 480)
    for secret in (b"SERIAL-0042-XYZ", b"PhoneMaker", b"Exif"):
        assert secret not in got.content
    thumb = await http.get(f"/api/files/{f['id']}/thumbnail", headers=await _auth(http, world, "pupil_member"))
    assert thumb.status_code == 200 and max(Image.open(io.BytesIO(thumb.content)).size) <= 320
    # Asked again with its tag: nothing is sent.
    again = await http.get(f"/api/files/{f['id']}", headers={**await _auth(http, world, "pupil_member"),
                                                               "if-none-match": got.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_who_may_upload(world, http, server):
    for who, status, code in (("visitor", 403, "forbidden"), ("outsider", 404, "not_found")):
        r = await _upload(http, world, who, "notes.txt", b"hello")
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), who
    for who in ("teacher_admin", "teacher_member", "pupil_admin", "pupil_member"):
        r = await _upload(http, world, who, "notes.txt", f"from {who}".encode())
        assert r.status_code == 201, (who, r.text)
    r = await http.post(f"/api/spaces/{world.space_id}/files?name=a.txt", content=b"x")
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthenticated")


async def test_an_unattached_file_is_its_uploaders_alone(world, http):
    r = await _upload(http, world, "pupil_member", "drawing.png", _png())
    fid = r.json()["id"]
    for who in ("teacher_admin", "pupil_admin", "visitor", "outsider"):
        got = await http.get(f"/api/files/{fid}", headers=await _auth(http, world, who))
        assert (got.status_code, got.json()["error"]["code"]) == (404, "not_found"), who
    missing = await http.get("/api/files/999999999", headers=await _auth(http, world, "pupil_member"))
    assert missing.status_code == 404


@pytest.mark.parametrize(("name", "body", "status", "code"), [
    ("empty.txt", b"", 400, "file_empty"),
    ("page.html", b"<!doctype html><script>alert(1)</script>", 415, "file_type_refused"),
    ("photo.jpg", b"<html><body><script>alert(1)</script></body></html>", 415, None),  # lies about its type
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 415, "file_type_refused"),
    ("tool.exe", b"MZ\x90\x00" + b"\x00" * 200, 415, None),
    ("photo.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", 415, "file_type_mismatch"),
    ("broken.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64, None, None),
])
async def test_what_is_refused_keeps_nothing(world, http, server, name, body, status, code):
    before = _kept(server)
    r = await _upload(http, world, "pupil_member", name, body)
    assert r.status_code >= 400, r.text
    if status is not None:
        assert r.status_code == status, r.text
    if code is not None:
        assert r.json()["error"]["code"] == code
    assert r.json()["error"]["code"] != "internal"
    assert _kept(server) == before


async def test_too_large_is_refused_announced_or_not(world, http, server):
    big = files_service.MAX_FILE_BYTES + 1
    before = _kept(server)
    auth = await _auth(http, world, "pupil_member")
    # Announced: refused from the request's head, before its body is read.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write((f"POST /api/spaces/{world.space_id}/files?name=film.mp4 HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: {auth['authorization']}\r\nContent-Length: {big}\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 413"), head
    writer.close()

    async def chunks():  # no length announced: counted as it arrives
        block = b"\0" * (1024 * 1024)
        for _ in range(21):
            yield block

    r = await http.post(f"/api/spaces/{world.space_id}/files?name=film.mp4", headers=auth, content=chunks(), timeout=60)
    assert (r.status_code, r.json()["error"]["code"]) == (413, "too_large")
    assert _kept(server) == before


async def test_a_name_is_a_name_not_a_path(world, http):
    r = await _upload(http, world, "pupil_member", "../../etc/passwd\u202egpj.txt", b"just text")
    if r.status_code == 201:
        name = r.json()["name"]
        assert "/" not in name and ".." not in name and "\u202e" not in name
    else:
        assert r.json()["error"]["code"] == "file_name_invalid"
    r = await http.post(f"/api/spaces/{world.space_id}/files", headers=await _auth(http, world, "pupil_member"),
                        content=b"text without a name")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "file_name_invalid")


async def test_the_same_content_is_kept_once_and_twenty_at_once_all_land(world, http, server):
    photo = _png()
    teacher = await _auth(http, world, "teacher_member")
    answers = await asyncio.gather(*(_upload(http, world, teacher, f"copy-{i}.png", photo) for i in range(20)))
    assert [a.status_code for a in answers] == [201] * 20
    assert len({a.json()["id"] for a in answers}) == 20
    blobs = [p for p in _kept(server) if "files" in p.parts]
    assert len({p.name for p in blobs}) == len({p.read_bytes() for p in blobs})  # each content once


async def test_past_the_projects_quota_nothing_is_kept(world, http, server, monkeypatch):
    monkeypatch.setattr(server.app.state.services.files, "_quota", 64 * 1024)
    before = _kept(server)
    r = await _upload(http, world, "pupil_member", "noise.bin.txt", os.urandom(8).hex().encode() * 10_000)
    assert (r.status_code, r.json()["error"]["code"]) == (413, "quota_exceeded")
    assert _kept(server) == before


async def test_a_closed_project_takes_no_file_and_a_removed_member_reads_none(world, http):
    r = await _upload(http, world, "pupil_member", "mine.txt", b"my notes")
    fid = r.json()["id"]
    admin = await _auth(http, world, "teacher_admin")
    r = await http.delete(f"/api/spaces/{world.space_id}/members/{world.users['pupil_member'].id}", headers=admin)
    assert r.status_code == 200, r.text
    got = await http.get(f"/api/files/{fid}", headers=await _auth(http, world, "pupil_member"))
    assert got.status_code == 404
    assert (await http.post(f"/api/spaces/{world.space_id}/close", headers=admin)).status_code == 200
    r = await _upload(http, world, "teacher_admin", "late.txt", b"too late")
    assert (r.status_code, r.json()["error"]["code"]) == (409, "space_closed")


def _png(colour: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, "PNG")
    return out.getvalue()


async def test_an_erased_pupils_files_leave_the_store(world, http, server):
    """A child's photos go with the child: erased by their home project's teacher admin, every
    file they added is unrecorded and its bytes deleted — but a content someone else also
    uploaded stays for them."""
    pupil = await _auth(http, world, "pupil_member")
    own = (await _upload(http, world, pupil, "me.png", _png((10, 200, 10)))).json()
    shared = _png((10, 10, 200))
    mine_too = (await _upload(http, world, pupil, "ours.png", shared)).json()
    teacher = await _auth(http, world, "teacher_member")
    theirs = (await _upload(http, world, teacher, "ours.png", shared)).json()
    stored = {p.name for p in _kept(server) if "files" in p.parts}

    admin = await _auth(http, world, "teacher_admin")
    r = await http.post(f"/api/spaces/{world.space_id}/pupils/{world.users['pupil_member'].id}/erase",
                        headers=admin, json={"reason": "left the school"})
    assert r.status_code == 200, r.text
    left = {p.name for p in _kept(server) if "files" in p.parts}
    assert left < stored and len(stored - left) == 2  # her own photo and its thumbnail
    got = await http.get(f"/api/files/{theirs['id']}", headers=teacher)
    assert got.status_code == 200 and got.content  # the same content, uploaded by the teacher, stays
    for fid in (own["id"], mine_too["id"]):
        assert (await http.get(f"/api/files/{fid}", headers=teacher)).status_code == 404
