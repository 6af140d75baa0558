-- Service tokens: a bot token may instead be scoped to posting activity records, for the parts
-- of a TwinSpace that live outside TwinHub (pages, documents, calendar, forums) — so that the
-- feed covers the whole space. Such records carry the caller's idempotency key.
ALTER TABLE bots ADD COLUMN scope text NOT NULL DEFAULT 'journal' CHECK (scope IN ('journal', 'activity'));
ALTER TABLE activities ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX activities_idempotency ON activities (space_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
