-- Who added a member: a teacher member may reset the passwords of the pupils they invited.
ALTER TABLE members ADD COLUMN invited_by bigint REFERENCES users (id);
