"""The HTTP edge: the ASGI app (app.py), its routes (api.py, members.py, account.py: one's own account and profile, platform.py), what they share
(http.py: the `Web` they work with, errors as JSON), the public journal as Server-Sent Events
(public_stream.py), /metrics (metrics.py), the security headers (headers.py) and the page
(static/).

May import: services/, fanout/, the top-level leaves, protocol/, storage/. Not ws/ or run/: the
composition root hands the ws endpoint and the services over as arguments."""
