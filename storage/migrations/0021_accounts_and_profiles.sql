-- One's own account, and member profiles (issue 22, points 21–22; docs/privacy.md).
--
-- An account can be erased: an adult deletes their own, a teacher admin of a pupil's home project
-- erases the pupil's. The row stays — messages, mails, reports and the append-only audit log name
-- its id, and rooms and messages are never deleted (0014) — but nothing in it says who the person
-- was any more: name, username, school and password go, and `erased_at` says when. The check
-- below holds that for every path (the service, a script, SQL by hand).
ALTER TABLE users ADD COLUMN erased_at timestamptz;
ALTER TABLE users ADD CONSTRAINT erased_accounts_name_nobody CHECK (
    erased_at IS NULL OR (
        password_hash IS NULL AND school = '' AND display_name = 'a former member'
        AND username = '#erased-' || id AND password_reset_by IS NULL AND password_reset_at IS NULL
    )
);

-- A short profile of each account (a photo comes with attachments): about-me text, the languages
-- one speaks (language tags) and a few interests. One per account, shown in each project the
-- account is in, to the members the role matrix lets see it (policy.decide_profile), never on the
-- public view. The limits are the service's too (services/profiles.py), checked again here.
CREATE TABLE profiles (
    user_id     bigint PRIMARY KEY REFERENCES users (id),
    about       text NOT NULL DEFAULT '' CHECK (length(about) <= 500),
    languages   text[] NOT NULL DEFAULT '{}' CHECK (cardinality(languages) <= 10),
    interests   text[] NOT NULL DEFAULT '{}' CHECK (cardinality(interests) <= 10),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
