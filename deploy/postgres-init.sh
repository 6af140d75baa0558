#!/bin/sh
# Run once by the postgres image, when its volume is new (/docker-entrypoint-initdb.d): TwinHub's
# own role, not a superuser, owning its database. A superuser would ignore the audit log's
# REVOKE UPDATE, DELETE, TRUNCATE (storage/migrations/0013_audit_privileges.sql).
set -eu
psql -v ON_ERROR_STOP=1 -v password="$TWINHUB_DB_PASSWORD" --username "$POSTGRES_USER" --dbname postgres <<'SQL'
CREATE ROLE twinhub LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
CREATE DATABASE twinhub OWNER twinhub;
SQL
