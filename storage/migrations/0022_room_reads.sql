-- Where each member has read each room up to (issue 23, point 5): the last seq of the room's
-- channel they saw there. The page's menu shows each room's unread messages from it — the
-- visible messages by others with a greater seq — on every browser the member uses, not only
-- the one they read on. A position only moves forward (storage/reads.py). Rooms are never
-- deleted (0014), so the reference stays valid; an erased account's positions go with it
-- (storage/erasure.py).
CREATE TABLE room_reads (
    user_id  bigint NOT NULL REFERENCES users (id),
    room_id  bigint NOT NULL REFERENCES rooms (id),
    seq      bigint NOT NULL CHECK (seq >= 0),
    read_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, room_id)
);
