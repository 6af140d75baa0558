-- Moderation: reports of room messages join the reports of mail in one table, every report has
-- a state a reviewer moves on (open -> resolved | dismissed, with a note), and a resumable
-- moderation queue per project plus one for the whole platform (queue 0, platform moderators).

-- Mail reports become reports; their ids (named in audit rows) are kept.
ALTER TABLE mail_reports RENAME TO reports;
ALTER INDEX mail_reports_by_space RENAME TO reports_by_space;
ALTER TABLE reports
    ALTER COLUMN mail_id DROP NOT NULL,
    ADD COLUMN kind text NOT NULL DEFAULT 'mail' CHECK (kind IN ('mail', 'message')),
    ADD COLUMN message_id bigint REFERENCES messages (id),
    ADD COLUMN room_id bigint REFERENCES rooms (id),
    ADD COLUMN status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'dismissed')),
    ADD COLUMN resolved_by bigint REFERENCES users (id),
    ADD COLUMN resolution text NOT NULL DEFAULT '',
    ADD COLUMN resolved_at timestamptz,
    -- a message's words as they were when reported: an edit or an erasure by its author does
    -- not change what the reviewers see (a moderator's erasure clears them too)
    ADD COLUMN reported_text text,
    ADD COLUMN reported_title text,
    ADD CONSTRAINT reports_names_one_thing CHECK (
        (kind = 'mail' AND mail_id IS NOT NULL AND message_id IS NULL)
        OR (kind = 'message' AND message_id IS NOT NULL AND room_id IS NOT NULL AND mail_id IS NULL)
    ),
    ADD CONSTRAINT reports_once_per_reporter UNIQUE (message_id, reporter_id);
ALTER TABLE reports ALTER COLUMN kind DROP DEFAULT;
CREATE INDEX reports_open ON reports (id) WHERE status = 'open';

-- A hidden message can be shown again.
ALTER TABLE room_events DROP CONSTRAINT room_events_kind_check;
ALTER TABLE room_events ADD CONSTRAINT room_events_kind_check
    CHECK (kind IN ('message.posted', 'message.edited', 'message.deleted', 'message.hidden', 'message.unhidden'));

-- The queues: `moderation:<space id>` for the project's reviewers, `moderation:0` for platform
-- moderators (every project). Each event is written to both, on each queue's gap-free seq. The
-- payload is read at replay time from the report, so a replay shows the report as it is now.
CREATE TABLE moderation_queues (
    queue     bigint PRIMARY KEY,  -- a space id, or 0 for the platform
    last_seq  bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 50);
INSERT INTO moderation_queues (queue) VALUES (0);

CREATE TABLE moderation_events (
    queue       bigint NOT NULL,
    seq         bigint NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('report.opened', 'report.resolved', 'report.dismissed')),
    report_id   bigint NOT NULL REFERENCES reports (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, seq)
);
