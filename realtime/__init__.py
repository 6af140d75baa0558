"""TwinHub's server, grouped by layer (docs/architecture.md has the map). Imports go downward only,
and tests/test_layers.py fails the build when one goes up or across:

    run/        the composition root, the server, workers, CLI, demo, the connection guard
    web/  ws/   the edges: HTTP routes and the page; the /ws endpoint and one connection's life
    services/   one module per capability: decide (policy), commit (storage/), publish (fanout/)
    fanout/     the hub, the bus (in-process, Redis), presence, the directory, control messages
    (top)       policy, errors, ratelimit, config, handshake, channels: small leaves
    protocol/, storage/   the wire format and SQL, which never import realtime/
"""
