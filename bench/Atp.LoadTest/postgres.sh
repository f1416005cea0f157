#!/usr/bin/env bash
# A throwaway PostgreSQL for the load test, with the durability of the tests (fsync on, synchronous_commit on):
#   eval "$(bench/Atp.LoadTest/postgres.sh start)"   # exports ATP_PG_CONNECTION and ATP_PG_ADMIN_CONNECTION
#   bench/Atp.LoadTest/postgres.sh stop
# Unix socket only (no TCP listener), in a temporary directory; as root the server runs as the postgres user.
# ATP_BENCH_PG_OPTIONS adds server options for an experiment (e.g. "-c shared_preload_libraries=pg_stat_statements").
set -euo pipefail
dir="${ATP_BENCH_PG_DIR:-/tmp/atp-bench-pg}"
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL server binaries are missing: apt-get install -y postgresql" >&2; exit 2; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port=54329
# The recommended settings of docs/postgres.md ("Server settings"), none of which weakens durability: checkpoints far
# enough apart that no run pays for a burst of full-page writes. (shared_buffers=2GB was tried and made the baseline
# ~45 % slower on this machine; see docs/postgres.md.) PostgreSQL starts a checkpoint once max_wal_size / (1 +
# checkpoint_completion_target) of WAL is written (8GB: after ~4.2 GB), and the baseline writes ~5.5 GB in a phase of
# 30 s warm-up + 20 s measured at 100,000 rows/s: 24GB keeps every phase (each starts after a CHECKPOINT) clear of one.
tuning="-c max_wal_size=24GB -c checkpoint_timeout=15min -c checkpoint_completion_target=0.9"

case "${1:-}" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >/dev/null
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
      "-p $port -k $dir -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c max_connections=200 $tuning ${ATP_BENCH_PG_OPTIONS:-}" start >/dev/null
    psql=("$bin/psql" -h "$dir" -p "$port" -U postgres -v ON_ERROR_STOP=1 -q)
    "${psql[@]}" -c "CREATE ROLE atp_owner LOGIN NOSUPERUSER NOBYPASSRLS" -c "CREATE ROLE atp_app LOGIN NOSUPERUSER NOBYPASSRLS"
    "${psql[@]}" -c "CREATE DATABASE atp OWNER atp_owner"
    # The load test runs VACUUM (ANALYZE) and CHECKPOINT (as the owner role) before each phase, so no phase pays for an earlier one's rows or WAL.
    "${psql[@]}" -c "GRANT pg_checkpoint TO atp_owner"
    echo "export ATP_PG_CONNECTION='Host=$dir;Port=$port;Database=atp;Username=atp_app'"
    echo "export ATP_PG_ADMIN_CONNECTION='Host=$dir;Port=$port;Database=atp;Username=atp_owner'"
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null && rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
