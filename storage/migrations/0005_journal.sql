-- The project journal: one room per space of kind 'journal' (area home). Its top-level
-- messages are entries, with a title; a message with a parent is a comment on that entry.
-- Being a room, the journal is a resumable channel with edit, delete and moderation for free.
ALTER TABLE rooms ADD COLUMN kind text NOT NULL DEFAULT 'room' CHECK (kind IN ('room', 'journal'));
CREATE UNIQUE INDEX rooms_one_journal ON rooms (space_id) WHERE kind = 'journal';
INSERT INTO rooms (space_id, area, name, kind) SELECT id, 'home', 'Project journal', 'journal' FROM spaces;

ALTER TABLE messages ADD COLUMN title text;
ALTER TABLE messages ADD COLUMN parent_id bigint REFERENCES messages (id);
