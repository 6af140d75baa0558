-- Mutes: a member silenced for a while, in one area of a project, in its mail, or in all of it.
-- One row per (space, member, scope); muting again replaces the end; lifting a mute deletes the
-- row. Both acts are in the audit log, which is the history.
CREATE TABLE mutes (
    space_id    bigint NOT NULL REFERENCES spaces (id),
    user_id     bigint NOT NULL REFERENCES users (id),
    scope       text NOT NULL CHECK (scope IN ('home', 'activities', 'teachers_room', 'pupils_corner', 'chat', 'mail', 'all')),
    until       timestamptz NOT NULL,
    muted_by    bigint REFERENCES users (id),
    reason      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (space_id, user_id, scope)
);
CREATE INDEX mutes_by_user ON mutes (user_id);
