#!/usr/bin/env bash
# Regenerates src/Atp.Integrity/PublicAPI.Unshipped.txt from the compiler's view of the public surface.
# Run after a deliberate change to the public API, then review the diff: every line is a promise to users.
set -euo pipefail
cd "$(dirname "$0")/../src/Atp.Integrity"
printf '#nullable enable\n' > PublicAPI.Unshipped.txt
dotnet build --no-incremental -p:TreatWarningsAsErrors=false 2>&1 \
  | grep -E 'RS0016' \
  | sed -E "s/.*Symbol '(.*)' is not part of the declared public API.*/\1/" \
  | sort -u >> PublicAPI.Unshipped.txt || true
dotnet build --no-incremental >/dev/null
echo "$(($(wc -l < PublicAPI.Unshipped.txt) - 1)) public symbols"
