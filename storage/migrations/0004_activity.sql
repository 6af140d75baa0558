-- The "most recent activity" feed: one record per domain action, written in the same
-- transaction as the action, on a gap-free sequence per space. `area` is the part of the project
-- the action belongs to (NULL: the project as a whole); readers see only the records of areas
-- their role may read, so a pupil's feed never shows the teachers' room.
CREATE TABLE feeds (
    space_id  bigint PRIMARY KEY REFERENCES spaces (id),
    last_seq  bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 50);  -- bumped with every action in the space: keep it a HOT update
INSERT INTO feeds (space_id) SELECT id FROM spaces;

CREATE TABLE activities (
    space_id    bigint NOT NULL,
    seq         bigint NOT NULL,
    kind        text NOT NULL,
    area        text CHECK (area IN ('home', 'activities', 'teachers_room', 'pupils_corner', 'chat')),
    actor_id    bigint,
    actor_role  text,  -- the actor's role in the space when they acted ("Ana (pupil, Lyon)")
    room_id     bigint,
    message_id  bigint,
    user_id     bigint,  -- the member an action is about (joined, role changed, removed)
    details     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (space_id, seq)
);
