"""TwinHub's server: the Starlette app, connections and sessions, the hub and the bus, the policy
(role matrix), the services (chat, projects), auth, configuration and the CLI."""
