"""Getting committed events and changes to every socket, on every process: the hub (local
fan-out, in seq order, gap repair), the bus seam (in-process or Redis, Redis Cluster), presence
and typing, the directory of live memberships, the typed control messages that keep it current,
and members' rate limits shared through Redis.

May import: the top-level leaves, protocol/, storage/. Not services/, web/, ws/ or run/."""
