#!/usr/bin/env bash
# Runs the whole ATP test suite from a fresh clone: restores, builds, runs every test project, and prints the
# totals summed over the TRX results as the last line ("N passed, N failed").
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v dotnet >/dev/null 2>&1; then
  echo "dotnet (the .NET 10 SDK) is required: https://dotnet.microsoft.com/download" >&2
  exit 2
fi

# The PostgreSQL engine's tests start their own throwaway server (initdb + pg_ctl in a temporary directory, on its own
# socket), so they need only the server binaries; the cluster Debian's package may create and start is never used.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's postgresql package for the PostgreSQL engine's tests" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } \
      || echo "Could not install postgresql: the PostgreSQL tests will fail." >&2
  else
    echo "PostgreSQL server binaries are missing: the PostgreSQL tests will fail. Install: apt-get install -y postgresql" >&2
  fi
fi

# The README walkthrough tests run its shell commands as written, which use curl.
if ! command -v curl >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's curl package for the README walkthrough tests" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; } \
      || echo "Could not install curl: the README walkthrough tests will fail." >&2
  else
    echo "curl is missing: the README walkthrough tests will fail. Install: apt-get install -y curl" >&2
  fi
fi

# The PKCS#11 signing-key tests run against a throwaway SoftHSM2 token (module and softhsm2-util from Debian's softhsm2).
if [ ! -f /usr/lib/softhsm/libsofthsm2.so ] || ! command -v softhsm2-util >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's softhsm2 package for the PKCS#11 signing-key tests" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null; } \
      || echo "Could not install softhsm2: the PKCS#11 tests will fail." >&2
  else
    echo "SoftHSM2 is missing: the PKCS#11 tests will fail. Install: apt-get install -y softhsm2" >&2
  fi
fi

# The observability tests check deploy/observability with promtool. Debian's prometheus package carries it; only that
# one static binary is taken from the package (no service, no web UI dependencies).
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Fetching promtool from Debian's prometheus package for the observability tests" >&2
    promtool_dir="$(mktemp -d)" && chmod 755 "$promtool_dir"
    { apt-get update -qq && (cd "$promtool_dir" && apt-get download -qq prometheus >/dev/null && dpkg -x prometheus_*.deb x) \
        && install -m 0755 "$promtool_dir/x/usr/bin/promtool" /usr/local/bin/promtool; } \
      || echo "Could not fetch promtool: the observability tests will fail." >&2
    rm -rf "$promtool_dir"
  else
    echo "promtool is missing: the observability tests will fail. Install: apt-get install -y prometheus" >&2
  fi
fi

results="TestResults"
rm -rf "$results"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

dotnet build Atp.slnx -c Release -nologo -v quiet || { echo "0 passed, 1 failed"; exit 1; }

dotnet test Atp.slnx -c Release --no-build --nologo \
  --logger "trx" --logger "console;verbosity=normal" --results-directory "$results" "$@"
status=$?

# The HTTP suite and the crash test once more, on PostgreSQL (tests marked Engine=postgres always run on it, above).
ATP_TEST_STORAGE=postgres dotnet test tests/Atp.Server.Tests -c Release --no-build --nologo --filter "Engine!=postgres" \
  --logger "trx;LogFileName=Atp.Server.Tests.postgres.trx" --logger "console;verbosity=normal" --results-directory "$results" "$@" \
  || status=1

passed=0; failed=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done

# Name every failed test (and the first line of its message) just above the totals, where a CI log's tail shows it.
if [ "$failed" -gt 0 ]; then
  echo "Failed tests:"
  for trx in "$results"/*.trx; do
    [ -f "$trx" ] || continue
    # One record per test result; a failed one prints its name and the first 300 characters of its message.
    awk -v file="$(basename "$trx")" 'BEGIN { RS = "<UnitTestResult " }
      /^[^>]*outcome="Failed"/ {
        name = $0; sub(/^.*testName="/, "", name); sub(/".*$/, "", name)
        msg = ""; if (match($0, /<Message>[^<]*/)) msg = substr($0, RSTART + 9, RLENGTH - 9)
        gsub(/[\r\n\t ]+/, " ", msg)
        out = "  [" file "] " name; if (msg != "") out = out ": " substr(msg, 1, 300)
        gsub(/&quot;/, "\"", out); gsub(/&lt;/, "<", out); gsub(/&gt;/, ">", out); gsub(/&amp;/, "\\&", out)
        print out
      }' "$trx"
  done
fi

if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "no test ran" >&2
  failed=1
  status=1
fi
echo "${passed} passed, ${failed} failed"
exit "$status"
