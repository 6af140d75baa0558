-- Files members add to a project (issue 26): a photo, a worksheet, a recording. The bytes are in
-- the blob store (storage/blobs.py) under the project and their SHA-256, one copy for the same
-- bytes within a project; a row per upload, with its own name and uploader. What is stored is
-- what the server made of the upload: an image re-encoded without its metadata, never the
-- original. `thumb_sha256`: an image's thumbnail, stored the same way.
CREATE TABLE files (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    space_id      bigint NOT NULL REFERENCES spaces (id),
    uploader_id   bigint REFERENCES users (id),
    sha256        bytea NOT NULL CHECK (length(sha256) = 32),
    size          bigint NOT NULL CHECK (size > 0),
    media_type    text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('image', 'audio', 'video', 'document', 'archive', 'text')),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    width         integer,
    height        integer,
    thumb_sha256  bytea CHECK (length(thumb_sha256) = 32),
    thumb_size    bigint,
    thumb_media_type text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_by_content ON files (space_id, sha256);
CREATE INDEX files_by_uploader ON files (uploader_id, created_at);
