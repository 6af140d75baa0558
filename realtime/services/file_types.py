"""What an uploaded file really is, decided by its bytes, and the name it may be downloaded under.

    inspect(path, claimed_name) -> FileType | Refusal
    safe_name(claimed_name, extension) -> str

Pure functions on a file on disk: no database, no network, no event loop (the upload path calls
`inspect` in a thread). The file is read, never changed; a zip's or an OLE file's directory is
read, never a member's data, so a zip bomb is not expanded.

**The type comes from the content**, never from the name. In this order:
1. a zip (`PK`): its directory (bounded, below) tells Office Open XML (`[Content_Types].xml` and
   `word/`, `xl/`, `ppt/`, `visio/`), OpenDocument and StarOffice (the first entry, `mimetype`,
   stored uncompressed: its few bytes are read), a Java or Android program, or a plain zip;
2. an OLE compound file (legacy Office): its directory's streams (`WordDocument`, `Workbook`,
   `PowerPoint Document`, `VisioDocument`) say which, read by `olefile`;
3. a macOS disk image: the `koly` trailer 512 bytes from the end;
4. text: the whole file is valid UTF-8 (or UTF-16 with a byte order mark) with no NUL — before
   the signatures, some of which are two or three letters (a note starting "MZ" is no program);
   but PDF, RTF and PostScript, which may be all text, are known by their signature;
5. every other format by its signature in the first 8 KB, read by `filetype`.

**Then the name's word is checked.** If the claimed name ends in the extension of a type we
accept (".jpg", ".pdf", ...) and the content is something else, the file lies about its type:
`file_type_mismatch`, even if the content would have been accepted under its own name (a PDF
called photo.jpg) and before `file_type_refused` (HTML called photo.jpg). Not a mismatch: a
content that refines its name (a .docx named ".zip", an audio-only MP4 named ".m4a", a QuickTime
film named ".mp4"); text we refuse under a text name (HTML called notes.txt is refused as HTML);
and the refusals of what a file holds rather than what it is (macros, an archive too large).

**What is refused, and why** (`file_type_refused`): TwinHub is used by children; a platform for
them gains nothing by hosting what a browser or a double-click would run, and a teacher who must
share such a thing zips it (a zip is accepted: it is opened by a person, on purpose).
- HTML, XHTML, SVG, JavaScript, CSS: a browser runs or applies them. Recognised by content
  (text whose first element is `<html`, `<svg`, `<script`, ... after a BOM, spaces, an XML
  declaration, comments, or a doctype naming html or svg; the tags of WHATWG MIME Sniffing's
  "identifying a resource with an unknown MIME type") and, for script and style sheets that
  are plain text, by their claimed extension (.js, .css, .vbs, .bat, .ps1, ...).
- XML is accepted only without anything a browser could run or fetch: no `<script`, no
  `javascript:`, no XHTML or SVG namespace, no `<?xml-stylesheet`, no `<!DOCTYPE`/`<!ENTITY`
  (entity expansion is a bomb of its own for whoever parses it later).
- Flash (swf): a dead plug-in, and a program.
- Programs: Windows (exe, dll, msi), Linux (elf), Java (jar), Android (apk), Chrome extensions,
  WebAssembly, macOS disk images (dmg: how Mac software is installed; no school document is one).
- Office documents with macros (a `vbaProject.bin` or ActiveX part in Office Open XML, a
  `Macros` or `_VBA_PROJECT_CUR` storage in legacy Office, Basic or script modules in
  OpenDocument, Excel 4.0 macro sheets): macros are the oldest way to attack through a
  document. Save it without macros to share it.
- RTF: legacy, replaced by docx/odt/pdf, and the usual carrier of attacks on Word through
  embedded objects (CVE-2017-0199, CVE-2017-11882, CVE-2023-21716 on mere preview); its
  control words are too easy to disguise for a scan to be trusted. Save it as docx, odt or pdf.
- PostScript (a programming language), and every other format `filetype` knows that is not in
  the list below (fonts, icons, Photoshop, camera raw, DICOM, 7z, rar, bz2, xz, ...).

**What is accepted** (the eTwinning FAQ's list, brought up to date): images jpeg, png, gif,
webp, bmp, tiff, heic/heif, avif; audio mp3, m4a, ogg/oga/opus, wav, flac, aac; video mp4/m4v,
mov, webm, mkv, avi, wmv/asf, mpeg; documents pdf, doc/dot, xls, ppt, vsd, docx, xlsx, pptx,
vsdx, odt, ods, odp, odg, odf, odb, sxw, sxc, sxi; archives zip, tar, gz/tgz; text txt, csv, xml.
Dropped from the FAQ's list: "lar" (no format of that name has a signature; a LAMS or Liferay
archive is a zip, and is accepted as one). Kept though legacy: doc/xls/ppt/vsd (old teaching
material is in them; macros are refused) and sxw/sxc/sxi (OpenOffice 1, zip and XML like ODF).

Whoever serves an accepted file must still send it with `Content-Disposition: attachment` and
`X-Content-Type-Options: nosniff`: a PDF may hold JavaScript (its viewer's sandbox is what keeps
it in), and a text file is only known not to *start* like markup.

**Refusal codes** (`Refusal.code`, stable; `Refusal.reason` is a short English sentence):
- `file_empty`: the file has no bytes.
- `file_name_invalid`: the claimed name is made only of control or invisible characters (every
  other name is cleaned by `safe_name`, not refused).
- `file_type_mismatch`: the name says an accepted type, the content is another (or unknown).
- `file_type_refused`: a type we recognise and do not accept (above).
- `file_type_unknown`: a type we do not recognise (binary, not text).
- `file_archive_too_large`: a zip (or an Office file, which is one) whose directory declares more
  than `MAX_ZIP_ENTRIES` entries or more than `MAX_ZIP_EXPANDED` bytes once unpacked: it would
  fill the disk of whoever opens it. Known limit: a zip can declare small sizes and still hold
  a stream that expands further; we never expand it, so we cannot tell. A gzip's size is not
  declared at all (its last four bytes are the size modulo 4 GiB), so gz is not checked.

**The download name** (`safe_name`): NFC; only the last path component (`/`, `\\`, a drive
letter); no control, format (bidi overrides like U+202E, which make "gpj.exe" read "exe.jpg",
zero-width characters), surrogate or line/paragraph separator characters; characters Windows
forbids in names (`<>:"|?*`) become `_`; runs of spaces become one; no leading dots or spaces,
no trailing dots or spaces; the claimed extension is dropped if it is one we know (accepted or
refused) and the content's is appended; at most `MAX_NAME` characters, the extension kept; a
Windows device name (CON, NUL, COM1, ...) gets a `_`; nothing left → "file".
"""

from __future__ import annotations

import codecs
import re
import struct
import unicodedata
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

import filetype
import olefile

Kind = Literal["image", "audio", "video", "document", "archive", "text"]

MAX_NAME = 150  # characters in a download name, extension included
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_EXPANDED = 1 << 30  # 1 GiB declared once unpacked
_HEAD = 64 * 1024  # what is read of the start for signatures and the text's first element
_TEXT_CHUNK = 1 << 20


class RefusalCode(StrEnum):
    """Why a file is not taken. Never renamed once published (the page translates them)."""

    FILE_EMPTY = "file_empty"
    FILE_NAME_INVALID = "file_name_invalid"
    FILE_TYPE_MISMATCH = "file_type_mismatch"
    FILE_TYPE_REFUSED = "file_type_refused"
    FILE_TYPE_UNKNOWN = "file_type_unknown"
    FILE_ARCHIVE_TOO_LARGE = "file_archive_too_large"
    IMAGE_TOO_LARGE = "image_too_large"  # images.py
    IMAGE_UNREADABLE = "image_unreadable"  # images.py


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a file is not taken: a stable `code` for the page to translate, and a short English
    `reason` for logs and for a reader without the translation."""

    code: RefusalCode
    reason: str


@dataclass(frozen=True, slots=True)
class FileType:
    """What the content is: `media_type` ("image/jpeg"), `kind`, `extension` (".jpg", with its dot:
    the claimed one if it is one of this type's, such as ".jpeg", else the usual one) and `name`,
    the safe download name (`safe_name`) with that extension."""

    media_type: str
    kind: Kind
    extension: str
    name: str


@dataclass(frozen=True, slots=True)
class _Type:
    media_type: str
    kind: Kind
    extensions: tuple[str, ...]  # the first is the usual one
    also: tuple[str, ...] = ()  # claimed extensions that are no lie for this content


_ISO_MEDIA = (".mp4", ".m4v", ".m4a", ".mov", ".3gp")
_OOXML = _ODF = (".zip",)

ACCEPTED: dict[str, _Type] = {
    "jpeg": _Type("image/jpeg", "image", (".jpg", ".jpeg", ".jpe", ".jfif")),
    "png": _Type("image/png", "image", (".png", ".apng")),
    "gif": _Type("image/gif", "image", (".gif",)),
    "webp": _Type("image/webp", "image", (".webp",)),
    "bmp": _Type("image/bmp", "image", (".bmp", ".dib")),
    "tiff": _Type("image/tiff", "image", (".tiff", ".tif")),
    "heic": _Type("image/heic", "image", (".heic", ".heif"), (".avif",)),
    "avif": _Type("image/avif", "image", (".avif",), (".heic", ".heif")),
    "mp3": _Type("audio/mpeg", "audio", (".mp3",)),
    "m4a": _Type("audio/mp4", "audio", (".m4a", ".m4b"), _ISO_MEDIA),
    "ogg": _Type("audio/ogg", "audio", (".ogg", ".oga", ".opus")),
    "wav": _Type("audio/wav", "audio", (".wav",)),
    "flac": _Type("audio/flac", "audio", (".flac",)),
    "aac": _Type("audio/aac", "audio", (".aac",)),
    "mp4": _Type("video/mp4", "video", (".mp4", ".m4v"), _ISO_MEDIA),
    "3gp": _Type("video/3gpp", "video", (".3gp",), _ISO_MEDIA),
    "mov": _Type("video/quicktime", "video", (".mov", ".qt"), _ISO_MEDIA),
    "webm": _Type("video/webm", "video", (".webm",), (".mkv",)),
    "mkv": _Type("video/x-matroska", "video", (".mkv",), (".webm",)),
    "avi": _Type("video/x-msvideo", "video", (".avi",)),
    "wmv": _Type("video/x-ms-wmv", "video", (".wmv", ".asf", ".wma")),
    "mpeg": _Type("video/mpeg", "video", (".mpeg", ".mpg")),
    "pdf": _Type("application/pdf", "document", (".pdf",)),
    "doc": _Type("application/msword", "document", (".doc", ".dot")),
    "xls": _Type("application/vnd.ms-excel", "document", (".xls", ".xlt")),
    "ppt": _Type("application/vnd.ms-powerpoint", "document", (".ppt", ".pps", ".pot")),
    "vsd": _Type("application/vnd.visio", "document", (".vsd",)),
    "docx": _Type("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                  "document", (".docx", ".dotx"), _OOXML),
    "xlsx": _Type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                  "document", (".xlsx", ".xltx"), _OOXML),
    "pptx": _Type("application/vnd.openxmlformats-officedocument.presentationml.presentation",
                  "document", (".pptx", ".ppsx", ".potx"), _OOXML),
    "vsdx": _Type("application/vnd.ms-visio.drawing", "document", (".vsdx",), _OOXML),
    "odt": _Type("application/vnd.oasis.opendocument.text", "document", (".odt",), _ODF),
    "ods": _Type("application/vnd.oasis.opendocument.spreadsheet", "document", (".ods",), _ODF),
    "odp": _Type("application/vnd.oasis.opendocument.presentation", "document", (".odp",), _ODF),
    "odg": _Type("application/vnd.oasis.opendocument.graphics", "document", (".odg",), _ODF),
    "odf": _Type("application/vnd.oasis.opendocument.formula", "document", (".odf",), _ODF),
    "odb": _Type("application/vnd.oasis.opendocument.base", "document", (".odb",), _ODF),
    "sxw": _Type("application/vnd.sun.xml.writer", "document", (".sxw",), _ODF),
    "sxc": _Type("application/vnd.sun.xml.calc", "document", (".sxc",), _ODF),
    "sxi": _Type("application/vnd.sun.xml.impress", "document", (".sxi",), _ODF),
    "zip": _Type("application/zip", "archive", (".zip",)),
    "tar": _Type("application/x-tar", "archive", (".tar",)),
    "gz": _Type("application/gzip", "archive", (".gz", ".tgz")),
    "txt": _Type("text/plain", "text", (".txt", ".text")),
    "csv": _Type("text/csv", "text", (".csv",), (".txt",)),
    "xml": _Type("application/xml", "text", (".xml",), (".txt",)),
}

# Known and refused: the key names the type in the reason; the extensions are recognised in
# claimed names (a text file claiming one of them is refused as that; safe_name drops them).
REFUSED: dict[str, tuple[str, tuple[str, ...]]] = {
    "html": ("HTML pages", (".html", ".htm", ".xhtml", ".xht", ".shtml", ".mht", ".mhtml")),
    "svg": ("SVG drawings (they can hold script)", (".svg", ".svgz")),
    "script": ("scripts", (".js", ".mjs", ".cjs", ".jse", ".vbs", ".vbe", ".wsf", ".wsh", ".hta",
                            ".bat", ".cmd", ".ps1", ".psm1", ".sh", ".command", ".scr", ".jsp",
                            ".php", ".asp", ".aspx", ".url", ".desktop", ".reg", ".inf", ".lnk")),
    "css": ("style sheets", (".css",)),
    "xml": ("XML that a browser could run (script, XHTML, SVG, style sheets, entities)", ()),
    "swf": ("Flash animations (they are programs)", (".swf",)),
    "rtf": ("RTF documents: save it as docx, odt or pdf", (".rtf",)),
    "program": ("programs", (".exe", ".dll", ".msi", ".com", ".sys", ".elf", ".so", ".bin",
                              ".appimage", ".jar", ".apk", ".aab", ".crx", ".wasm", ".deb", ".rpm")),
    "dmg": ("macOS disk images (they install software)", (".dmg",)),
    "macros": ("Office documents with macros: save it without them",
               (".docm", ".dotm", ".xlsm", ".xltm", ".xlam", ".xlsb", ".pptm", ".potm", ".ppsm", ".ppam", ".vsdm")),
    "ps": ("PostScript files (they are programs): save it as pdf", (".ps", ".eps")),
    "other": ("this kind of file", ()),
}

# A document with macros is what it says it is, and refused for what it holds: never a mismatch.
_MACROS = Refusal(RefusalCode.FILE_TYPE_REFUSED, f"TwinHub does not take {REFUSED['macros'][0]}")

# filetype's extension -> our key (accepted or refused); any other it knows is "other".
_FILETYPE = {
    "jpg": "jpeg", "png": "png", "apng": "png", "gif": "gif", "webp": "webp", "bmp": "bmp",
    "tif": "tiff", "heic": "heic", "avif": "avif", "mp3": "mp3", "m4a": "m4a", "ogg": "ogg",
    "wav": "wav", "flac": "flac", "aac": "aac", "mp4": "mp4", "m4v": "mp4", "3gp": "3gp",
    "mov": "mov", "webm": "webm", "mkv": "mkv", "avi": "avi", "wmv": "wmv", "mpg": "mpeg",
    "pdf": "pdf", "tar": "tar", "gz": "gz", "swf": "swf", "rtf": "rtf", "ps": "ps",
    "exe": "program", "elf": "program", "crx": "program", "wasm": "program", "deb": "program",
    "rpm": "program",
}

_ODF_TYPES = {
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/vnd.oasis.opendocument.graphics": "odg",
    "application/vnd.oasis.opendocument.formula": "odf",
    "application/vnd.oasis.opendocument.base": "odb",
    "application/vnd.sun.xml.writer": "sxw",
    "application/vnd.sun.xml.calc": "sxc",
    "application/vnd.sun.xml.impress": "sxi",
}
_OOXML_PARTS = {"word": "docx", "xl": "xlsx", "ppt": "pptx", "visio": "vsdx"}
_OLE_STREAMS = {"worddocument": "doc", "workbook": "xls", "book": "xls",
                "powerpoint document": "ppt", "visiodocument": "vsd"}
_OLE_MACROS = {"macros", "_vba_project_cur", "vba"}
_TEXT_FORMATS = frozenset({"pdf", "rtf", "ps"})  # formats that may be all text: their signature wins
_TEXT_REFUSED = frozenset({"!html", "!svg", "!xml", "!script", "!css"})  # text, just not text we take
_MSI_CLSID = "000C1084-0000-0000-C000-000000000046"

_KNOWN_EXTENSIONS = frozenset(
    [e for t in ACCEPTED.values() for e in t.extensions] + [e for _, es in REFUSED.values() for e in es]
)
_CLAIMED_ACCEPTED = {e: key for key, t in ACCEPTED.items() for e in t.extensions}
_CLAIMED_REFUSED = {e: key for key, (_, es) in REFUSED.items() for e in es}

# WHATWG MIME Sniffing, 7.1 "identifying a resource with an unknown MIME type": the tags that make
# a browser take bytes for HTML; with svg, and the XML-only roots a browser renders.
_MARKUP_ROOTS = frozenset(
    "html head script iframe h1 div font table a style title b body br p !-- !doctype math"
    " xsl:stylesheet xsl:transform".split()
)
_PROLOG = re.compile(r"(?:\s+|<\?xml\b.*?\?>|<!--.*?-->|<!doctype\b[^>\[]*(?:\[.*?\])?\s*>)", re.I | re.S)
_FIRST_TAG = re.compile(r"<(!--|!doctype|[a-z_][\w:.-]*)", re.I)
_XML_ACTIVE = re.compile(
    r"<script|javascript:|http://www\.w3\.org/1999/xhtml|http://www\.w3\.org/2000/svg"
    r"|<\?xml-stylesheet|<!doctype|<!entity", re.I)
_SEPARATORS = re.compile(r"\s+")
_DEVICES = frozenset(["CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))])
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_WINDOWS_FORBIDDEN = str.maketrans({c: "_" for c in '<>:"|?*'})


def inspect(path: Path, claimed_name: str) -> FileType | Refusal:
    """What the file at `path` is, by its content, and under which name it may be downloaded;
    or why it is refused (the codes are in the module's docstring). Reads the file (text: all of
    it; binary: its start, its end and a zip's or OLE file's directory); never expands anything.
    Raises OSError only if `path` cannot be read."""
    size = path.stat().st_size
    if size == 0:
        return Refusal(RefusalCode.FILE_EMPTY, "the file is empty")
    if claimed_name and not any(unicodedata.category(c) not in _HIDDEN for c in claimed_name):
        return Refusal(RefusalCode.FILE_NAME_INVALID, "the file's name is only invisible characters")
    claimed = _extension(_clean(claimed_name))
    found = _content(path, size, claimed)
    if isinstance(found, Refusal):
        return found
    if claimed in _CLAIMED_ACCEPTED and not (found in ACCEPTED and claimed in _claimable(found)) \
            and not (found in _TEXT_REFUSED and ACCEPTED[_CLAIMED_ACCEPTED[claimed]].kind == "text"):
        content = f"a {ACCEPTED[found].extensions[0][1:]} file" if found in ACCEPTED else "something else"
        return Refusal(RefusalCode.FILE_TYPE_MISMATCH, f"the name says {claimed} but the file is {content}")
    if found is None:
        return Refusal(RefusalCode.FILE_TYPE_UNKNOWN, "TwinHub does not know this kind of file")
    if found not in ACCEPTED:
        return Refusal(RefusalCode.FILE_TYPE_REFUSED, f"TwinHub does not take {REFUSED[found[1:]][0]}")
    kind = ACCEPTED[found]
    extension = claimed if claimed in kind.extensions else kind.extensions[0]
    return FileType(kind.media_type, kind.kind, extension, safe_name(claimed_name, extension))


def _claimable(key: str) -> tuple[str, ...]:
    return ACCEPTED[key].extensions + ACCEPTED[key].also


def _content(path: Path, size: int, claimed: str) -> str | Refusal | None:
    """A key of ACCEPTED, a key of REFUSED prefixed by "!" (both tables have "xml"), a specific
    refusal, or None (unknown)."""
    with path.open("rb") as f:
        head = f.read(_HEAD)
        f.seek(max(0, size - 512))
        tail = f.read()
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip(path, size)
    if head[:8] == olefile.MAGIC:
        return _ole(path)
    if size >= 512 and tail[-512:][:4] == b"koly":
        return "!dmg"
    guess = filetype.guess(head[:8192])
    key = _FILETYPE.get(guess.extension, "other") if guess is not None else None
    if key not in _TEXT_FORMATS:
        # Some signatures are two or three letters ("MZ" is an exe to filetype, "ID3" an mp3):
        # a file that is all text is text. A real binary is not: it holds NULs or invalid UTF-8.
        text = _text(path, head, claimed)
        if text is not None:
            return text
    if key is None:
        return None
    return key if key in ACCEPTED else f"!{key}"


def _zip(path: Path, size: int) -> str | Refusal | None:
    entries = _zip_entries_declared(path, size)
    if entries is None:
        return None
    if entries > MAX_ZIP_ENTRIES:
        return Refusal(RefusalCode.FILE_ARCHIVE_TOO_LARGE, f"the zip holds more than {MAX_ZIP_ENTRIES} files")
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            expanded = sum(i.file_size for i in infos)
            if expanded > MAX_ZIP_EXPANDED:
                return Refusal(RefusalCode.FILE_ARCHIVE_TOO_LARGE,
                               f"the zip would unpack to more than {MAX_ZIP_EXPANDED >> 30} GB")
            first = infos[0] if infos else None
            mimetype = b""
            if first and first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED \
                    and first.file_size <= 100:
                with z.open(first) as member:  # stored: read as is, nothing expanded
                    mimetype = member.read(100)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None
    names = [i.filename for i in infos]
    lower = [n.lower() for n in names]
    odf = _ODF_TYPES.get(mimetype.decode("ascii", "replace").strip())
    if odf:
        macros = any(n.startswith("scripts/") or (n.startswith("basic/") and not n.endswith("/") and n.rsplit("/", 1)[-1]
                     not in ("script-lc.xml", "script-lb.xml", "dialog-lc.xml", "dialog-lb.xml")) for n in lower)
        return _MACROS if macros else odf
    if "[content_types].xml" in lower:
        if any(n.endswith("vbaproject.bin") or "/activex/" in n or n.startswith("xl/macrosheets/") for n in lower):
            return _MACROS
        tops = {n.split("/", 1)[0] for n in lower if "/" in n}
        for part, key in _OOXML_PARTS.items():
            if part in tops:
                return key
    if "meta-inf/manifest.mf" in lower or "androidmanifest.xml" in lower or "classes.dex" in lower:
        return "!program"
    return "zip"


def _zip_entries_declared(path: Path, size: int) -> int | None:
    """The number of entries the zip's end record declares (zip64 too), read before zipfile reads
    the directory itself, so that a directory of millions of entries is refused unread."""
    with path.open("rb") as f:
        start = max(0, size - (22 + 0xFFFF))
        f.seek(start)
        end = f.read()
        at = end.rfind(b"PK\x05\x06")
        if at < 0 or len(end) - at < 22:
            return None
        entries = struct.unpack_from("<H", end, at + 10)[0]
        if entries != 0xFFFF or at < 20 or end[at - 20:at - 16] != b"PK\x06\x07":
            return entries
        record = struct.unpack_from("<Q", end, at - 20 + 8)[0]
        if record > size - 56:
            return None
        f.seek(record)
        zip64 = f.read(56)
        if zip64[:4] != b"PK\x06\x06":
            return None
        return struct.unpack_from("<Q", zip64, 32)[0]


def _ole(path: Path) -> str | Refusal | None:
    try:
        with olefile.OleFileIO(str(path)) as ole:
            entries = ole.listdir(streams=True, storages=True)
            clsid = ole.root.clsid if ole.root else ""
    except Exception:  # a parser on hostile bytes: whatever it raises, this is no OLE file we can read
        return None
    if clsid.upper() == _MSI_CLSID:
        return "!program"
    parts = {p.lower() for entry in entries for p in entry}
    tops = {entry[0].lower() for entry in entries}
    if parts & _OLE_MACROS:
        return _MACROS
    for stream, key in _OLE_STREAMS.items():
        if stream in tops:
            return key
    return None


def _text(path: Path, head: bytes, claimed: str) -> str | None:
    """"txt", "csv" or "xml" (by the claimed name, which only chooses among text types), a
    refused key, or None if this is not text."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    start = ""
    xml_active = False
    carry = ""  # the end of the last chunk, so that a marker split between two is still seen
    with path.open("rb") as f:
        while True:
            chunk = f.read(_TEXT_CHUNK)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                return None
            if "\x00" in text:
                return None
            if len(start) < _HEAD:
                start += text[: _HEAD - len(start)]
            xml_active = xml_active or bool(_XML_ACTIVE.search(carry + text))
            carry = text[-40:]
            if not chunk:
                break
    root = _first_element(start)
    if root in ("html", "svg"):
        return f"!{root}"
    refused = _CLAIMED_REFUSED.get(claimed)
    if refused:
        return f"!{refused}"
    if claimed in ACCEPTED["xml"].extensions and not root:
        return "txt"  # no markup: not XML, whatever its name says (a mismatch)
    if claimed in ACCEPTED["xml"].extensions or root == "?xml":
        if xml_active:
            return "!xml"
        return "xml" if claimed in ACCEPTED["xml"].extensions else "txt"
    return "csv" if claimed in ACCEPTED["csv"].extensions else "txt"


def _first_element(text: str) -> str:
    """What the text starts as: "html" or "svg" if a browser would render it so — its doctype
    names html or svg, or its first tag (after spaces, an XML declaration, comments and a
    doctype) is svg, html or script, or without an XML declaration one of WHATWG's HTML tags;
    "?xml" if it starts with other markup; "" for plain text."""
    at = 0
    declared = prolog = False
    while True:
        m = _PROLOG.match(text, at)
        if not m or m.end() == at:
            break
        token = m.group(0).lstrip()
        doctype = re.match(r"<!doctype\s+(html|svg)\b", token, re.I)
        if doctype:
            return doctype.group(1).lower()
        declared = declared or token[:5].lower() == "<?xml"
        prolog = prolog or token.startswith("<")
        at = m.end()
    m = _FIRST_TAG.match(text, at)
    if not m:
        return "?xml" if prolog else ""
    name = m.group(1).lower()
    local = name.rsplit(":", 1)[-1]
    if local == "svg":
        return "svg"
    if local in ("html", "script") or (not declared and name in _MARKUP_ROOTS):
        return "html"
    return "?xml"


def safe_name(claimed_name: str, extension: str) -> str:
    """The name to download a file under: the claimed name cleaned (the rules are in the module's
    docstring) with `extension` (".jpg", the content's) at its end; never empty, at most MAX_NAME
    characters."""
    name = _clean(claimed_name)
    stem = name[: -len(_extension(name))] if _extension(name) in _KNOWN_EXTENSIONS else name
    stem = stem.rstrip(" .")
    if stem.lower().endswith(extension.lower()):
        stem = stem[: -len(extension)].rstrip(" .")
    stem = stem[: MAX_NAME - len(extension)].rstrip(" .")
    stem = unicodedata.normalize("NFC", stem).lstrip(" .")
    if not stem:
        stem = "file"
    if stem.split(".")[0].upper() in _DEVICES:
        stem = "_" + stem
    return (stem + extension)[:MAX_NAME]


def _clean(claimed_name: str) -> str:
    """The claimed name in NFC, its last path component, without hidden characters, with spaces
    for whitespace and `_` for what Windows forbids, trimmed of spaces and dots."""
    name = unicodedata.normalize("NFC", claimed_name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"^[A-Za-z]:", "", name)
    name = "".join(" " if c.isspace() else c for c in name if c.isspace() or unicodedata.category(c) not in _HIDDEN)
    return _SEPARATORS.sub(" ", name.translate(_WINDOWS_FORBIDDEN)).strip(" .")


def _extension(name: str) -> str:
    """".jpg" of "Photo.JPG" (lower-cased), or "" if the name has none."""
    m = re.search(r"\.[A-Za-z0-9]{1,10}$", name.strip(" "))
    return m.group(0).lower() if m else ""
