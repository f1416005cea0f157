#!/bin/sh
# Random passwords for deploy/compose.yaml, written to deploy/secrets/ (git-ignored). For a laptop or a lab: in
# production use your secret store (Docker swarm secrets, Kubernetes Secrets, a vault agent writing these files).
set -eu
cd "$(dirname "$0")"
umask 022 # the postgres (uid 999) and ATP (uid 1654) containers read these bind-mounted files
random() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
[ -e postgres_password ] || random > postgres_password
[ -e atp_owner.pgpass ] || echo "postgres:5432:atp:atp_owner:$(random)" > atp_owner.pgpass
[ -e atp_app.pgpass ] || echo "postgres:5432:atp:atp_app:$(random)" > atp_app.pgpass
echo "secrets in $(pwd)"
