"""The WebSocket edge: the /ws handshake (endpoint.py), one connection's outbox and flush
(connection.py), what its frames mean (session.py), and the uvicorn protocol underneath that
keeps less per socket (server_protocol.py).

The contract with the server underneath: the endpoint is a plain ASGI app and works under any
ASGI server. Where `receive` is a bound method of our own protocol (`receive.__self__` is a
`LeanWebSocketProtocol`), the connection also uses its direct paths — `write_message` and
`send_message` to write without an ASGI message per frame, `forget_handshake` to drop the
handshake's headers — and under any other server it falls back to ASGI `send`.

May import: services/, fanout/, the top-level leaves, protocol/, storage/. Not web/ or run/."""
