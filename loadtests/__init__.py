"""TwinHub load tests: a fast WebSocket load generator (picows), the fan-out, idle-memory and
TwinMail scenarios, and a raw `websockets.broadcast()` peer to compare against.

    python -m loadtests fanout              C subscribers in one room, one publisher
    python -m loadtests baseline-broadcast  the same load against loadtests/peers/websockets_broadcast.py
    python -m loadtests compare             both, same parameters, one table with ratios
    python -m loadtests idle                N authenticated idle connections: RSS per connection
    python -m loadtests mail                TwinMail: N members each sending mail to R others
    python -m loadtests scaleout            the fan-out on 1, 2, 4 processes over Redis, and the Redis hop
    python -m loadtests peers               TwinHub and seven peers (loadtests/peers/), same client, one table

docs/performance.md explains the figures; every run writes loadtests/results/<scenario>-<time>.json.
"""
