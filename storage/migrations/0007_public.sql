-- A project's public view (name, description, journal; read-only, no login) can be turned off.
ALTER TABLE spaces ADD COLUMN public boolean NOT NULL DEFAULT true;
