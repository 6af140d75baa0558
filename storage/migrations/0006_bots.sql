-- Bots: a token a teacher admin creates for one space, good for posting journal entries there
-- and nothing else. Each bot posts as a user of its own (platform_role 'bot'), so its entries
-- carry its name; the token is stored as its SHA-256 only and shown once, at creation.
ALTER TABLE users DROP CONSTRAINT users_platform_role_check;
ALTER TABLE users ADD CONSTRAINT users_platform_role_check CHECK (platform_role IN ('moderator', 'bot'));

CREATE TABLE bots (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    space_id    bigint NOT NULL REFERENCES spaces (id),
    user_id     bigint NOT NULL UNIQUE REFERENCES users (id),
    token_hash  bytea NOT NULL UNIQUE,
    created_by  bigint REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX bots_by_space ON bots (space_id);
