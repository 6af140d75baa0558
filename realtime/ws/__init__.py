"""The WebSocket edge: the /ws handshake (endpoint.py), one connection's outbox and flush
(connection.py), what its frames mean (session.py), and the uvicorn protocol underneath that
keeps less per socket (server_protocol.py).

May import: services/, fanout/, the top-level leaves, protocol/, storage/. Not web/ or run/."""
