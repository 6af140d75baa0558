"""services/file_types.py: the type by the bytes, the refusals, the safe name. Every fixture is
made here: zips with zipfile, an OLE file by hand, a PDF by hand, images with Pillow."""

from __future__ import annotations

import io
import struct
import time
import unicodedata
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from realtime.services.file_types import (
    MAX_NAME,
    MAX_ZIP_ENTRIES,
    FileType,
    Refusal,
    RefusalCode,
    inspect,
    safe_name,
)

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def write(tmp_path: Path, data: bytes, name: str = "upload") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "JPEG")
    return out.getvalue()


def zipped(entries: dict[str, bytes], first_stored: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        if first_stored:
            z.writestr(zipfile.ZipInfo(first_stored), entries.pop(first_stored), zipfile.ZIP_STORED)
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


def docx(extra: dict[str, bytes] | None = None) -> bytes:
    return zipped({"[Content_Types].xml": b"<Types/>", "_rels/.rels": b"<Relationships/>",
                   "word/document.xml": b"<w:document/>", **(extra or {})})


def odf(mimetype: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    return zipped({"mimetype": mimetype, "content.xml": b"<office:document-content/>",
                   "META-INF/manifest.xml": b"<manifest/>", **(extra or {})}, first_stored="mimetype")


def ole(streams: list[tuple[str, int]]) -> bytes:
    """A compound file (CFB v3, 512-byte sectors) whose root holds `streams`: (name, type), type
    2 a stream, 1 a storage, all empty. Sector 0 is the FAT, sector 1 the directory."""
    end, free = 0xFFFFFFFE, 0xFFFFFFFF
    header = bytearray(512)
    header[0:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIIII", header, 40, 0, 1, 1, 0, 4096, end, 0, end, 0)
    struct.pack_into("<I", header, 76, 0)
    for i in range(1, 109):
        struct.pack_into("<I", header, 76 + 4 * i, free)
    fat = struct.pack("<II", 0xFFFFFFFD, end) + b"\xff" * 504

    def entry(name: str, kind: int, right: int = free, child: int = free) -> bytes:
        raw = bytearray(128)
        encoded = name.encode("utf-16-le") + b"\0\0"
        raw[: len(encoded)] = encoded
        struct.pack_into("<HBBIII", raw, 64, len(encoded), kind, 1, free, right, child)
        struct.pack_into("<IQ", raw, 116, end if kind != 1 else 0, 0)
        return bytes(raw)

    entries = [entry("Root Entry", 5, child=1 if streams else free)]
    for i, (name, kind) in enumerate(streams, start=1):
        entries.append(entry(name, kind, right=i + 1 if i < len(streams) else free))
    directory = b"".join(entries).ljust(512, b"\0")
    return bytes(header) + fat + directory


# --- what is accepted, by its content -------------------------------------------------------


@pytest.mark.parametrize(("data", "claimed", "media_type", "kind", "name"), [
    (jpeg(), "holiday.jpeg", "image/jpeg", "image", "holiday.jpeg"),
    (jpeg(), "no extension", "image/jpeg", "image", "no extension.jpg"),
    (PDF, "Homework.PDF", "application/pdf", "document", "Homework.pdf"),
    (docx(), "essay.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     "document", "essay.docx"),
    (docx(), "essay.zip", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     "document", "essay.docx"),  # a docx is a zip: the name did not lie, the content refines it
    (zipped({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}), "marks.xlsx",
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "document", "marks.xlsx"),
    (zipped({"[Content_Types].xml": b"<Types/>", "ppt/presentation.xml": b"<p/>"}), "talk",
     "application/vnd.openxmlformats-officedocument.presentationml.presentation", "document", "talk.pptx"),
    (odf(b"application/vnd.oasis.opendocument.text"), "story.odt",
     "application/vnd.oasis.opendocument.text", "document", "story.odt"),
    (odf(b"application/vnd.oasis.opendocument.spreadsheet"), "sheet",
     "application/vnd.oasis.opendocument.spreadsheet", "document", "sheet.ods"),
    (zipped({"a.txt": b"hello", "b/c.png": b"..."}), "project.zip", "application/zip", "archive", "project.zip"),
    (ole([("WordDocument", 2), ("1Table", 2)]), "old.doc", "application/msword", "document", "old.doc"),
    (ole([("Workbook", 2)]), "old", "application/vnd.ms-excel", "document", "old.xls"),
    (ole([("PowerPoint Document", 2)]), "slides.ppt", "application/vnd.ms-powerpoint", "document", "slides.ppt"),
    ("Grüße aus Łódź\n".encode(), "notes.txt", "text/plain", "text", "notes.txt"),
    (b"\xef\xbb\xbfname;age\nAda;11\n", "class.csv", "text/csv", "text", "class.csv"),
    ("hello, UTF-16".encode("utf-16"), "hello.txt", "text/plain", "text", "hello.txt"),
    (b'<?xml version="1.0"?>\n<plants><plant>fern</plant></plants>', "plants.xml", "application/xml",
     "text", "plants.xml"),
])
def test_a_file_is_known_by_its_content(tmp_path, data, claimed, media_type, kind, name):
    found = inspect(write(tmp_path, data), claimed)
    assert isinstance(found, FileType), found
    assert (found.media_type, found.kind, found.name) == (media_type, kind, name)
    assert found.name.endswith(found.extension)


def test_a_text_that_starts_like_a_short_signature_is_text(tmp_path):
    for start in (b"MZ", b"ID3", b"BZh", b"FWS"):  # an exe, an mp3, a bzip2, a Flash file to filetype
        found = inspect(write(tmp_path, start + b" is how our notes begin\n"), "notes.txt")
        assert isinstance(found, FileType) and found.media_type == "text/plain", (start, found)


def test_hidden_characters_do_not_hide_the_claimed_extension(tmp_path):
    found = inspect(write(tmp_path, PDF), "photo.j\u200bp\u202eg")
    assert isinstance(found, Refusal) and found.code == RefusalCode.FILE_TYPE_MISMATCH


def test_the_name_never_decides_the_type(tmp_path):
    found = inspect(write(tmp_path, PDF), "")
    assert isinstance(found, FileType) and found.media_type == "application/pdf" and found.name == "file.pdf"


# --- refusals ---------------------------------------------------------------------------------


def refused(tmp_path: Path, data: bytes, claimed: str) -> Refusal:
    found = inspect(write(tmp_path, data), claimed)
    assert isinstance(found, Refusal), found
    assert found.reason
    return found


def test_an_empty_file_is_refused(tmp_path):
    assert refused(tmp_path, b"", "empty.txt").code == RefusalCode.FILE_EMPTY == "file_empty"


@pytest.mark.parametrize(("data", "claimed"), [
    (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "page.html"),
    (b"\xef\xbb\xbf  \n<HTML><body>hi</body></HTML>", "page.txt"),  # after a BOM and spaces, any name
    (b"<script>fetch('/api')</script>", "notes.txt"),
    (b"<!-- a comment --><iframe src=x></iframe>", "notes.txt"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "drawing.svg"),
    (b'<?xml version="1.0" standalone="no"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x">\n'
     b'<svg xmlns="http://www.w3.org/2000/svg"/>', "drawing"),
    (b'<?xml version="1.0"?><!-- made by hand --><svg:svg xmlns:svg="http://www.w3.org/2000/svg"/>', "d"),
    (b'<?xml version="1.0"?><data><x>javascript:alert(1)</x></data>', "data.xml"),
    (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "bbbbbbbb">]><a>&b;&b;</a>', "laughs.xml"),
    (b'<?xml version="1.0"?><?xml-stylesheet href="x.xsl"?><a/>', "styled.xml"),
    (b"alert(document.cookie)\n", "game.js"),
    (b"body { background: url(x) }\n", "style.css"),
    (b"@echo off\ndel *.*\n", "run.bat"),
    (b"MZ\x90\x00\x03" + b"\x00" * 200, "game.exe"),
    (b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "tool"),
    (b"FWS\x09" + b"\x00" * 50, "movie.swf"),
    (b"{\\rtf1\\ansi{\\object\\objemb{\\*\\objdata 0105}}}", "letter.rtf"),
    (b"\x00" * 600 + b"koly" + b"\x00" * 508, "app.dmg"),
    (docx({"word/vbaProject.bin": b"\xd0\xcf"}), "essay.docm"),
    (zipped({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<w/>", "xl/macrosheets/m.xml": b"<m/>"}),
     "sums.xlsm"),
    (odf(b"application/vnd.oasis.opendocument.text", {"Basic/Standard/Module1.xml": b"<script/>"}), "m.odt"),
    (ole([("WordDocument", 2), ("Macros", 1)]), "old.doc"),
    (ole([("Workbook", 2), ("_VBA_PROJECT_CUR", 1)]), "old.xls"),
    (zipped({"META-INF/MANIFEST.MF": b"Main-Class: X\n", "X.class": b"\xca\xfe\xba\xbe"}), "game.jar"),
    (bytes.fromhex("377ABCAF271C") + b"\x00" * 50, "photos.7z"),
    (b"%!PS-Adobe-3.0\n", "print.ps"),
])
def test_what_a_browser_or_a_double_click_could_run_is_refused(tmp_path, data, claimed):
    assert refused(tmp_path, data, claimed).code == RefusalCode.FILE_TYPE_REFUSED


@pytest.mark.parametrize(("data", "claimed"), [
    (b"<!DOCTYPE html><html><body>not a photo</body></html>", "photo.jpg"),
    (PDF, "photo.jpg"),
    (jpeg(), "report.pdf"),
    (zipped({"a.txt": b"plain zip"}), "essay.docx"),
    (docx(), "story.odt"),
    (b"MZ\x90\x00" + b"\x00" * 200, "notes.txt"),
    (b"\x00\x01\x02\x03 random bytes \xff\xfe", "song.mp3"),
    (b"just words, no markup\n", "data.xml"),
])
def test_a_name_that_says_one_accepted_type_over_another_content_is_refused(tmp_path, data, claimed):
    found = refused(tmp_path, data, claimed)
    assert found.code == RefusalCode.FILE_TYPE_MISMATCH
    assert claimed.rsplit(".", 1)[1] in found.reason


def test_unknown_bytes_under_no_accepted_name_are_unknown(tmp_path):
    data = bytes(range(256)) * 4  # a NUL and invalid UTF-8: not text, and no signature
    assert refused(tmp_path, data, "thing.dat").code == RefusalCode.FILE_TYPE_UNKNOWN
    assert refused(tmp_path, ole([("Something", 2)]), "thing").code == RefusalCode.FILE_TYPE_UNKNOWN


def test_text_with_a_nul_is_not_text(tmp_path):
    assert refused(tmp_path, b"hello\x00world", "a.bin").code == RefusalCode.FILE_TYPE_UNKNOWN


def test_a_name_of_only_invisible_characters_is_refused(tmp_path):
    found = refused(tmp_path, jpeg(), "\u202e\u200b\u0007")
    assert found.code == RefusalCode.FILE_NAME_INVALID


def test_a_zip_declaring_a_huge_size_is_refused_without_being_expanded(tmp_path):
    data = bytearray(zipped({"bomb.txt": b"0" * 1000}))
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 0xFFFFFFF0)  # uncompressed size: 4 GiB
    started = time.perf_counter()
    found = refused(tmp_path, bytes(data), "bomb.zip")
    assert found.code == RefusalCode.FILE_ARCHIVE_TOO_LARGE
    assert time.perf_counter() - started < 0.5


def test_a_docx_whose_parts_would_unpack_to_gigabytes_is_refused(tmp_path):
    data = bytearray(docx())
    at = 0
    while (at := data.find(b"PK\x01\x02", at + 1)) >= 0:
        struct.pack_into("<I", data, at + 24, 0x7FFFFFFF)
    assert refused(tmp_path, bytes(data), "essay.docx").code == RefusalCode.FILE_ARCHIVE_TOO_LARGE


def test_a_zip_declaring_too_many_entries_is_refused_before_its_directory_is_read(tmp_path):
    data = bytearray(zipped({"a.txt": b"a"}))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, MAX_ZIP_ENTRIES + 1, MAX_ZIP_ENTRIES + 1)
    assert refused(tmp_path, bytes(data), "many.zip").code == RefusalCode.FILE_ARCHIVE_TOO_LARGE


def test_a_damaged_zip_is_not_taken_for_a_zip(tmp_path):
    data = b"PK\x03\x04" + b"\x00" * 100
    assert refused(tmp_path, data, "x.zip").code == RefusalCode.FILE_TYPE_MISMATCH
    assert refused(tmp_path, data, "x").code == RefusalCode.FILE_TYPE_UNKNOWN


# --- the safe name ----------------------------------------------------------------------------


@pytest.mark.parametrize(("claimed", "extension", "name"), [
    ("../../etc/passwd", ".txt", "passwd.txt"),
    ("C:\\Users\\ada\\Pictures\\Photo.JPG", ".jpg", "Photo.jpg"),
    ("D:photo.png", ".png", "photo.png"),
    ("holiday\u202egpj.exe", ".jpg", "holidaygpj.jpg"),  # shown as "holidayexe.jpg" before
    ("zero\u200bwidth\u2066.pdf", ".pdf", "zerowidth.pdf"),
    ("...hidden", ".txt", "hidden.txt"),
    ("  my   summer\tphoto .png ", ".png", "my summer photo.png"),
    ("photo.png", ".jpg", "photo.jpg"),  # the content's extension, not the claimed one
    ("photo.jpg.exe", ".jpg", "photo.jpg"),
    ("archive.tar.gz", ".gz", "archive.tar.gz"),
    ("report.final", ".pdf", "report.final.pdf"),  # not an extension we know: part of the name
    ("what?: <a|b>*", ".txt", "what__ _a_b__.txt"),
    ("con.txt", ".txt", "_con.txt"),
    ("", ".pdf", "file.pdf"),
    ("/", ".pdf", "file.pdf"),
])
def test_safe_name(claimed, extension, name):
    assert safe_name(claimed, extension) == name


def test_safe_name_is_nfc():
    decomposed = "Jose\u0301.txt"
    assert safe_name(decomposed, ".txt") == "Jos\u00e9.txt"


def test_a_long_name_is_cut_to_the_limit_keeping_its_extension():
    name = safe_name("é" * 400 + ".docx", ".docx")
    assert len(name) == MAX_NAME and name.endswith(".docx") and name.startswith("é")


@given(st.text(max_size=400), st.sampled_from([".jpg", ".pdf", ".docx", ".txt", ".tar"]))
def test_any_claimed_name_gives_a_safe_one(claimed, extension):
    name = safe_name(claimed, extension)
    assert name.endswith(extension) and len(name) > len(extension) and len(name) <= MAX_NAME
    assert not name.startswith((".", " "))
    assert not set(name) & set('/\\<>:"|?*')
    assert all(unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in name)
    assert unicodedata.is_normalized("NFC", name)
