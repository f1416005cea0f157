#!/bin/sh
# Runs once in the postgres container of deploy/compose.yaml, on an empty data directory (docker-entrypoint-initdb.d):
# ATP's two roles (docs/postgres.md, "Roles and migrations") and the atp database owned by the owner role. The
# passwords are read from the pgpass secrets ATP uses too (host:port:database:user:password), so each is kept once.
set -eu

secrets="${ATP_SECRETS_DIR:-/run/secrets}"
password() { cut -d: -f5- "$1" | head -n 1; }

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v owner_password="$(password "$secrets/atp_owner_pgpass")" \
     -v app_password="$(password "$secrets/atp_app_pgpass")" <<'SQL'
CREATE ROLE atp_owner LOGIN PASSWORD :'owner_password' NOSUPERUSER NOBYPASSRLS;
CREATE ROLE atp_app LOGIN PASSWORD :'app_password' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE DATABASE atp OWNER atp_owner;
SQL
