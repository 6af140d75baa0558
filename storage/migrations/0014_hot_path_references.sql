-- Posting is TwinHub's hottest write: a group commit stores hundreds of messages and their room
-- events at once. Three of the foreign keys on that path were checked row by row (a trigger and
-- a query per row each) for references the same transaction had just made sure of, and they
-- cost PostgreSQL about a third of the statement (docs/performance.md, "Ingest"):
--   messages.room_id        post_many bumps each room's last_seq first, in the same transaction,
--                           and refuses the batch if a room is missing;
--   room_events.room_id,    a post's event is inserted from the message row the same statement
--   room_events.message_id  inserted; an edit's, delete's or hide's after the UPDATE of that
--                           message in that room succeeded, in the same transaction.
-- messages.author_id keeps its foreign key: an author id comes from whoever calls (a session,
-- a bot), and that is the check worth paying for.
-- What a foreign key also promised — the row referred to never disappears — holds because rooms
-- and messages are never deleted (a message is erased with deleted_at; a room closes with its
-- project): the triggers below refuse DELETE and TRUNCATE on them, so a reference that was
-- valid when written stays valid.
ALTER TABLE messages DROP CONSTRAINT messages_room_id_fkey;
ALTER TABLE room_events DROP CONSTRAINT room_events_room_id_fkey;
ALTER TABLE room_events DROP CONSTRAINT room_events_message_id_fkey;

CREATE FUNCTION history_is_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted (a message is erased with deleted_at)', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER rooms_never_deleted BEFORE DELETE ON rooms
    FOR EACH ROW EXECUTE FUNCTION history_is_never_deleted();
CREATE TRIGGER rooms_never_truncated BEFORE TRUNCATE ON rooms
    FOR EACH STATEMENT EXECUTE FUNCTION history_is_never_deleted();
CREATE TRIGGER messages_never_deleted BEFORE DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION history_is_never_deleted();
CREATE TRIGGER messages_never_truncated BEFORE TRUNCATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION history_is_never_deleted();
