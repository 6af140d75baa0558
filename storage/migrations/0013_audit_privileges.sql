-- The audit log is append-only twice over: the triggers of 0001 refuse UPDATE, DELETE and
-- TRUNCATE for everyone, and the role that runs TwinHub (the one applying migrations, which
-- owns the table) gives up those privileges too, so that a non-superuser deployment cannot
-- even ask. A superuser (the embedded default) still meets the triggers.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM CURRENT_USER;
