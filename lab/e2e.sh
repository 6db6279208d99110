#!/usr/bin/env bash
# End to end: for each load-balancer layout, a fresh single-master lab, the
# e2e test (promote, checks, failover), and the lab removed at the end.
#   E2E_MODES="external node-local" (default) picks the layouts.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
rc=0
for mode in ${E2E_MODES:-external node-local}; do
  echo "[e2e] $mode: fresh lab" >&2
  bash lab/lab.sh down && bash lab/lab.sh up || { rc=1; break; }
  E2E_LB_MODE=$mode go test -count=1 -tags e2e -timeout 30m -v ./e2e/... || rc=1
done
bash lab/lab.sh down || rc=1
exit $rc
