-- The language each account reads the page in (a catalogue's tag: 'pl', 'el', 'ar'…), chosen from
-- the language menu and kept by the server, so that a pupil on a shared classroom computer gets
-- theirs wherever they log in. NULL: none chosen, the browser's languages decide.
ALTER TABLE users ADD COLUMN language text CHECK (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$');

-- A project's own language, set by its teacher admins: pupils' new accounts start in it, and their
-- login sheets are printed in it. Which tags exist is the page's list (realtime/services/languages.py).
ALTER TABLE spaces ADD COLUMN language text NOT NULL DEFAULT 'en'
    CHECK (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$');
