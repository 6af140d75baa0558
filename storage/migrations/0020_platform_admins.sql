-- Platform administrators (issue 22, point 17): staff accounts that run the platform's projects
-- over HTTP — create them with their default rooms and first teacher admin, list, rename, close
-- and reopen them (every one at once at the start of a school year: seed 000_…, "Tous les projets
-- eTwinning sont fermés à la rentrée scolaire"), and place a platform moderator in one. They are
-- members of no project by being administrators, and read nothing inside one: what they may do is
-- realtime/policy.decide_platform. Moderators keep their moderation rights, and only those.
-- Like a moderator's, an administrator's account is never a pupil's (0015's trigger: an account
-- with a platform role never takes a pupil's role).
ALTER TABLE users DROP CONSTRAINT users_platform_role_check;
ALTER TABLE users ADD CONSTRAINT users_platform_role_check CHECK (platform_role IN ('moderator', 'bot', 'admin'));

-- A pupil removed from their home project can be added back by its teachers (issue 22, point 19),
-- who list the pupils their project made that are not members now: found by their home.
CREATE INDEX users_by_home ON users (home_space_id) WHERE home_space_id IS NOT NULL;
