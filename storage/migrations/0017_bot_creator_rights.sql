-- A bot token answers to the teacher admin who made it (issue 21, rule 9). When its creator
-- leaves the project (removed, or leaving) or stops being a teacher admin there, their bots of
-- that project are revoked in the same transaction, whatever made the change: an HTTP route, a
-- WebSocket frame, `twinhub admin`, SQL by hand. Each is written to the audit log as `bot.revoke`
-- with the reason and no actor (the trigger does not know who made the change; the
-- member.removed or member.role_changed entry of the same transaction names them).
-- A bot without a creator (`twinhub admin create-bot` without --by) answers to nobody's membership.
ALTER TABLE bots ADD COLUMN last_used_at timestamptz;  -- to the minute (storage/bots.mark_used)
ALTER TABLE bots ADD COLUMN revoked_reason text
    CHECK (revoked_reason IN ('revoked', 'creator_left', 'creator_demoted'));
-- An activity token made for some members names only them (NULL: any adult member).
ALTER TABLE bots ADD COLUMN actors bigint[];
UPDATE bots SET revoked_reason = 'revoked' WHERE revoked_at IS NOT NULL;
ALTER TABLE bots ADD CONSTRAINT bots_revoked_with_a_reason CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL));
CREATE INDEX bots_by_creator ON bots (space_id, created_by) WHERE revoked_at IS NULL;

CREATE FUNCTION revoke_bots_of(of_space bigint, of_creator bigint, why text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WITH revoked AS (
        UPDATE bots SET revoked_at = now(), revoked_reason = why
        WHERE space_id = of_space AND created_by = of_creator AND revoked_at IS NULL
        RETURNING id
    )
    INSERT INTO audit_log (space_id, actor_id, action, target_kind, target_id, reason, details)
    SELECT of_space, NULL, 'bot.revoke', 'bot', id, why, jsonb_build_object('creator', of_creator)
    FROM revoked ORDER BY id;
END
$$;

CREATE FUNCTION members_revoke_creators_bots() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM revoke_bots_of(OLD.space_id, OLD.user_id,
                           CASE WHEN TG_OP = 'DELETE' THEN 'creator_left' ELSE 'creator_demoted' END);
    RETURN NULL;
END
$$;

CREATE TRIGGER members_revoke_bots_on_leaving AFTER DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION members_revoke_creators_bots();
CREATE TRIGGER members_revoke_bots_on_demotion AFTER UPDATE OF role ON members
    FOR EACH ROW WHEN (OLD.role = 'teacher_admin' AND NEW.role <> 'teacher_admin')
    EXECUTE FUNCTION members_revoke_creators_bots();

-- The other half: a bot is made by a teacher admin of its project. Their membership row is read
-- FOR SHARE, so a removal or demotion committing meanwhile either waits for the bot (and then
-- revokes it) or is seen (and the bot is refused): no bot outlives its creator's rights.
CREATE FUNCTION bots_made_by_a_teacher_admin() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.created_by IS NOT NULL THEN
        PERFORM 1 FROM members
        WHERE space_id = NEW.space_id AND user_id = NEW.created_by AND role = 'teacher_admin' FOR SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'a bot is made by a teacher admin of its project'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'bot_creator';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER bots_made_by_a_teacher_admin BEFORE INSERT ON bots
    FOR EACH ROW EXECUTE FUNCTION bots_made_by_a_teacher_admin();

-- Bots made before whose creator is no longer a teacher admin of the project go now.
WITH stale AS (
    UPDATE bots b SET revoked_at = now(), revoked_reason = CASE
        WHEN EXISTS (SELECT 1 FROM members m WHERE m.space_id = b.space_id AND m.user_id = b.created_by)
        THEN 'creator_demoted' ELSE 'creator_left' END
    WHERE b.revoked_at IS NULL AND b.created_by IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM members m WHERE m.space_id = b.space_id AND m.user_id = b.created_by AND m.role = 'teacher_admin'
    )
    RETURNING b.id, b.space_id, b.created_by, b.revoked_reason
)
INSERT INTO audit_log (space_id, actor_id, action, target_kind, target_id, reason, details)
SELECT space_id, NULL, 'bot.revoke', 'bot', id, revoked_reason, jsonb_build_object('creator', created_by)
FROM stale ORDER BY id;
