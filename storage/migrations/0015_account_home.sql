-- An account has a home (issue 21). Adults and pupils are different kinds of account, not two
-- roles of one: no role change turns one into the other. A pupil account belongs to the project
-- that made it (home_space_id): only that project's teachers reset its password. Who last reset
-- it, and when, is kept so that the pupil is told at their next login.
ALTER TABLE users ADD COLUMN kind text NOT NULL DEFAULT 'adult' CHECK (kind IN ('adult', 'pupil'));
ALTER TABLE users ADD COLUMN home_space_id bigint REFERENCES spaces (id);
ALTER TABLE users ADD COLUMN password_reset_by bigint REFERENCES users (id);
ALTER TABLE users ADD COLUMN password_reset_at timestamptz;

-- Accounts made before: a pupil's is one whose first membership was as a pupil; its home is there.
UPDATE users u SET kind = 'pupil', home_space_id = first.space_id
FROM (SELECT DISTINCT ON (user_id) user_id, space_id, role FROM members ORDER BY user_id, joined_at, space_id) first
WHERE first.user_id = u.id AND first.role IN ('pupil_admin', 'pupil_member') AND u.platform_role IS NULL;

ALTER TABLE users ADD CONSTRAINT pupils_have_a_home CHECK ((kind = 'pupil') = (home_space_id IS NOT NULL));

-- Every path that makes or changes a membership (the services, the CLI, an accepted invitation)
-- goes through this: a new account's first membership decides its kind (made as a pupil, it is a
-- pupil's, at home here); after that, a pupil's role stays a pupil's and an adult's an adult's.
CREATE FUNCTION members_keep_account_kind() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    account record;
    as_pupil boolean := NEW.role IN ('pupil_admin', 'pupil_member');
BEGIN
    SELECT kind, platform_role INTO account FROM users WHERE id = NEW.user_id FOR UPDATE;
    IF account.kind = 'pupil' AND NOT as_pupil THEN
        RAISE EXCEPTION 'a pupil account cannot hold an adult role'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'account_kind';
    END IF;
    IF account.kind = 'adult' AND as_pupil THEN
        IF TG_OP = 'INSERT' AND account.platform_role IS NULL
           AND NOT EXISTS (SELECT 1 FROM members WHERE user_id = NEW.user_id) THEN
            UPDATE users SET kind = 'pupil', home_space_id = NEW.space_id WHERE id = NEW.user_id;
        ELSE
            RAISE EXCEPTION 'an adult account cannot be a pupil'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'account_kind';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER members_keep_account_kind BEFORE INSERT OR UPDATE OF role ON members
    FOR EACH ROW EXECUTE FUNCTION members_keep_account_kind();
