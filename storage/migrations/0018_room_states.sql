-- Rooms can be archived and deleted (issue 21, rule 12). A room's row never disappears (0014:
-- its messages and their reports are evidence, and the hot path's references rely on it), so
-- both are states of the row:
--   active     the usual
--   archived   read-only for everyone, still read, listed with "archived": true; unarchived again
--   deleted    gone for the members — not listed, every request about it answers not_found like
--              a room that never existed — but its messages stay, for the reports about them.
--              A deleted room stays deleted: the trigger below refuses any way back, whoever asks.
-- The project journal is always active: it cannot be archived nor deleted.
-- Posting checks the state in the statement that takes a room's seqs (storage/messages.py), under
-- the row lock a state change also takes: no message lands in a room after it was archived.
ALTER TABLE rooms ADD COLUMN state text NOT NULL DEFAULT 'active'
    CHECK (state IN ('active', 'archived', 'deleted'));
ALTER TABLE rooms ADD CONSTRAINT journal_always_active CHECK (kind <> 'journal' OR state = 'active');

CREATE FUNCTION deleted_rooms_stay_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'deleted' AND NEW.state <> 'deleted' THEN
        RAISE EXCEPTION 'room % was deleted: a deleted room stays deleted', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'deleted_rooms_stay_deleted';
    END IF;
    RETURN NEW;
END;
$$;
-- OF state: the posts' UPDATE of last_seq does not fire it.
CREATE TRIGGER rooms_deleted_stay_deleted BEFORE UPDATE OF state ON rooms
    FOR EACH ROW EXECUTE FUNCTION deleted_rooms_stay_deleted();
