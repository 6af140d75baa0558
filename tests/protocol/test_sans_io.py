"""protocol/ is sans-I/O: it imports no event loop, socket, web framework or database driver."""

from __future__ import annotations

import subprocess
import sys


def test_protocol_imports_no_io_modules():
    code = (
        "import sys, protocol, protocol.codec, protocol.frames, protocol.errors, protocol.limits\n"
        "bad = {'asyncio', 'socket', 'starlette', 'asyncpg', 'redis', 'websockets', 'uvicorn', 'realtime', 'storage'}\n"
        "print(sorted(bad & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
