-- TwinHub core schema: accounts, spaces and their members, rooms with their gap-free event
-- sequence, messages, sessions and the append-only audit log.
-- Every table that belongs to a space carries space_id, so that partitioning by space stays possible.

CREATE TABLE users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (length(username) BETWEEN 2 AND 64),
    display_name   text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    password_hash  text,
    -- platform-wide staff role; per-space roles live in members
    platform_role  text CHECK (platform_role IN ('moderator')),
    school         text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE spaces (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug         text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    closed_at    timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE members (
    space_id   bigint NOT NULL REFERENCES spaces (id),
    user_id    bigint NOT NULL REFERENCES users (id),
    role       text NOT NULL CHECK (role IN ('teacher_admin', 'teacher_member', 'pupil_admin', 'pupil_member', 'visitor')),
    joined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (space_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id);

CREATE TABLE rooms (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    space_id    bigint NOT NULL REFERENCES spaces (id),
    area        text NOT NULL CHECK (area IN ('home', 'activities', 'teachers_room', 'pupils_corner', 'chat')),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- the last seq handed out on this room's channel; bumped in the same transaction as the event
    last_seq    bigint NOT NULL DEFAULT 0,
    created_by  bigint REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rooms_by_space ON rooms (space_id);

CREATE TABLE messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    space_id    bigint NOT NULL,
    room_id     bigint NOT NULL REFERENCES rooms (id),
    seq         bigint NOT NULL,
    author_id   bigint NOT NULL REFERENCES users (id),
    text        text,
    client_id   text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    edited_at   timestamptz,
    deleted_at  timestamptz,
    hidden_at   timestamptz,
    hidden_by   bigint REFERENCES users (id),
    UNIQUE (room_id, seq),
    -- a retried post with the same client_id finds the first one instead of writing twice
    UNIQUE (author_id, client_id)
);

-- The room channel's log: one row per seq, gap-free, so a client resuming from `since` gets
-- every change (post, edit, delete, hide) in order. The payload is the message's current state,
-- read at replay time, so a deleted or hidden message's text is never replayed.
CREATE TABLE room_events (
    room_id     bigint NOT NULL REFERENCES rooms (id),
    seq         bigint NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('message.posted', 'message.edited', 'message.deleted', 'message.hidden')),
    message_id  bigint NOT NULL REFERENCES messages (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, seq)
);

CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    space_id     bigint,
    actor_id     bigint REFERENCES users (id),
    action       text NOT NULL,
    target_kind  text NOT NULL,
    target_id    bigint,
    reason       text NOT NULL DEFAULT '',
    details      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_by_space ON audit_log (space_id, id);

-- Append-only: nobody edits or erases what moderators did, not even through SQL.
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
