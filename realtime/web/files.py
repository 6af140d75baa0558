"""HTTP routes for files (docs/protocol.md, "Files"): an upload, streamed as the request's raw
body, and a download, streamed from the blob store. Rights are the files service's and the
policy's; these only translate HTTP.

A download can never run script in the page's origin: the server takes no HTML, SVG, script or
Flash at all (services/file_types.py), every answer says `X-Content-Type-Options: nosniff` (a
browser believes the type the server checked) and `Content-Security-Policy: sandbox;
default-src 'none'` (opened on its own, a file is a document of a unique origin that runs
nothing and loads nothing), and every type but images, sound and video goes as an attachment
(saved, not shown). Images, re-encoded by the server, are shown inline in the page."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from protocol import ErrorCode
from storage import NotFound

from ..errors import ServiceError
from ..services.files import Download
from .http import int_param_path, viewer_of, web_of

INLINE_KINDS = ("image", "audio", "video")


async def upload(request: Request) -> Response:
    """201 with the file as clients see it; the body is the file's bytes, `?name=` its name."""
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    length = request.headers.get("content-length")
    done = await web_of(request).services.files.upload(
        viewer, space_id, request.query_params.get("name"), request.stream(),
        int(length) if length and length.isdigit() else None,
    )
    return JSONResponse(done, status_code=201)


async def download(request: Request) -> Response:
    return await _send(request, thumbnail=False)


async def thumbnail(request: Request) -> Response:
    return await _send(request, thumbnail=True)


async def _send(request: Request, *, thumbnail: bool) -> Response:
    viewer = await viewer_of(request)
    files = web_of(request).services.files
    found = await files.open(viewer, int_param_path(request, "file_id"), thumbnail=thumbnail)
    tag = f'"{found.key.rsplit("/", 1)[-1]}"'  # the content's SHA-256: the same bytes, the same tag
    headers = _headers(found, tag)
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    chunks = files.read(found)
    try:
        first = await anext(chunks, b"")  # an absent blob fails here, before any byte is sent
    except NotFound:
        raise ServiceError(ErrorCode.INTERNAL, "the file's bytes are missing from the store") from None
    return StreamingResponse(_then(first, chunks), media_type=found.media_type,
                             headers={**headers, "Content-Length": str(found.size)})


async def _then(first: bytes, rest):  # type: ignore[no-untyped-def]
    if first:
        yield first
    async for chunk in rest:
        yield chunk


def _headers(found: Download, tag: str) -> dict[str, str]:
    disposition = "inline" if found.file.kind in INLINE_KINDS else "attachment"
    return {
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(found.file.name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cross-Origin-Resource-Policy": "same-origin",
        # Kept by the browser, asked again each time: who may read a file can change.
        "Cache-Control": "private, no-cache",
        "ETag": tag,
    }


routes = [
    Route("/api/spaces/{space_id}/files", upload, methods=["POST"]),
    Route("/api/files/{file_id}", download, methods=["GET"]),
    Route("/api/files/{file_id}/thumbnail", thumbnail, methods=["GET"]),
]
