-- Invitations of teachers and visitors (seed: teacher admins invite teachers, pupils and
-- visitors and choose their role; the invited teacher accepts). A teacher admin invites an
-- existing account by its username, or makes a one-time code for someone who has none yet (a
-- parent, a head teacher, a teacher from outside eTwinning), passed on by hand. The invitee
-- accepts or declines; accepting makes them a member with the role chosen. Pupils are not
-- invited this way: their accounts are made for them (0010, storage/pupils.py).
CREATE TABLE invitations (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    space_id     bigint NOT NULL REFERENCES spaces (id),
    role         text NOT NULL CHECK (role IN ('teacher_admin', 'teacher_member', 'visitor')),
    invitee_id   bigint REFERENCES users (id),
    code_hash    bytea UNIQUE,  -- sha256 of the one-time code; the code itself is shown once
    label        text NOT NULL DEFAULT '',  -- whom a code is for ("Mme Martin, head teacher")
    note         text NOT NULL DEFAULT '',
    invited_by   bigint NOT NULL REFERENCES users (id),
    -- 'expired' is written when a pending one past expires_at stands in the way of a new one
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'declined', 'revoked', 'expired')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    answered_at  timestamptz,
    answered_by  bigint REFERENCES users (id),  -- who accepted, declined or revoked (a code's redeemer)
    CHECK ((invitee_id IS NULL) <> (code_hash IS NULL))
);
CREATE UNIQUE INDEX invitations_pending_once ON invitations (space_id, invitee_id)
    WHERE status = 'pending' AND invitee_id IS NOT NULL;
CREATE INDEX invitations_by_invitee ON invitations (invitee_id) WHERE status = 'pending';
CREATE INDEX invitations_by_space ON invitations (space_id, id);
