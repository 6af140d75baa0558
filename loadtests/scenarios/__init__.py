"""Scenarios: what load to put on a server and what to measure (fanout, idle, mail, feed, scaleout), and the
servers they run against (targets)."""
