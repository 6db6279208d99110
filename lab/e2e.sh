#!/usr/bin/env bash
# End to end: for each Kubernetes version, load-balancer layout and lab
# profile, a fresh single-master lab, the e2e test (promote, checks,
# failover), and the lab removed at the end.
#   E2E_RUNS="VERSION:MODE[:PROFILE[:NODES[:ACCESS[:ENGINE[:UPGRADE]]]]] ..." (default:
#   CI's set below; `make e2e-all` adds the rest, with E2E_FAULTS=all).
#   MODE is external, node-local or vip (keepalived's address 10.250.0.100
#   on every master); ACCESS is the lab's LAB_ACCESS: direct (the default)
#   or bastion (the nodes reachable only through the bastion gate, as a user
#   with passwordless sudo); ENGINE is nginx (the default) or haproxy.
#   UPGRADE, a newer patch version (v1.36.3), adds the day-2 stage: the
#   last node is left out of the cluster, and after the promote kubeadm's
#   own e2e suite runs, certificates are renewed, that node joins with
#   `kubeadm join --control-plane` and every master is upgraded to UPGRADE
#   with kubeadm (e2e/day2_test.go).
# The older minor proves the supported range, here through the bastion, as
# sudo user, with haproxy behind a virtual address; it is built on first use. A
# node-local run also interrupts a promote, rolls the half-promoted cluster
# back and kills promotes in several phases; a run with 4 nodes loses
# shaolin for good, removes it, promotes the fourth node, rolls back,
# promotes again and restores a backup.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
rc=0
summary=()
failures=()
# why_failed prints, from a go test -v log, the output of each test that
# failed (a failed TestE2E's own lines include its metrics), at most 150
# lines, so that the end of CI's output, which is what is kept, says what
# went wrong.
why_failed() {
  awk '
    NR == FNR { if ($0 ~ /^ *--- FAIL: /) { n = $0; sub(/^ *--- FAIL: /, "", n); sub(/ .*/, "", n); failed[n] = 1 }; next }
    /^=== (RUN|NAME|CONT) / { name = $3; on = (name in failed); if (on) print; next }
    /^ *--- (PASS|FAIL|SKIP): / { on = 0 }
    on { print }
  ' "$1" "$1" | tail -n 150
}
for run in ${E2E_RUNS:-v1.36.3:external:plain:4 v1.36.3:node-local:production v1.35:vip:plain:4:bastion:haproxy:v1.36.3}; do
  IFS=: read -r version mode profile nodes access engine upgrade <<< "$run"
  profile=${profile:-plain}
  nodes=${nodes:-3}
  access=${access:-direct}
  engine=${engine:-nginx}
  echo "[e2e] Kubernetes $version, LB $mode ($engine), $profile lab of $nodes nodes, $access access: fresh lab" >&2
  t0=$SECONDS
  spare=0 day2=() e2e_nodes=$nodes
  if [[ -n $upgrade ]]; then
    # kubeadm's suite of the lab's own version, built once and cached.
    if ! suite=$(LAB_K8S_VERSION=$version bash lab/lab.sh e2e-kubeadm); then
      rc=1; summary+=("$run: building e2e_kubeadm FAILED"); continue
    fi
    names=(shaolin emei wudang huashan kunlun kongtong qingcheng)
    spare=1 e2e_nodes=$((nodes - 1))
    day2=(E2E_DAY2=1 E2E_JOINER="${names[$((nodes - 1))]}" E2E_JOINER_IP="10.250.0.$((10 + nodes))" E2E_UPGRADE_TO="$upgrade" E2E_KUBEADM_SUITE="$suite")
  fi
  if ! { bash lab/lab.sh down && LAB_NODES=$nodes LAB_SPARE=$spare LAB_UPGRADE_TO=$upgrade LAB_PROFILE=$profile LAB_ACCESS=$access LAB_K8S_VERSION=$version bash lab/lab.sh up; }; then
    rc=1; summary+=("$run: lab FAILED"); continue
  fi
  interrupt=""; [[ $mode == node-local ]] && interrupt=1
  if env "${day2[@]}" E2E_NODES=$e2e_nodes E2E_ACCESS=$access E2E_INTERRUPT=$interrupt E2E_LB_MODE=$mode E2E_LB_ENGINE=$engine E2E_PROFILE=$profile go test -count=1 -tags e2e -timeout 30m -v ./e2e/... 2>&1 | tee /tmp/haadm-e2e-test.log; [[ ${PIPESTATUS[0]} == 0 ]]; then
    summary+=("$run: ok ($((SECONDS - t0))s)")
  else
    rc=1; summary+=("$run: FAILED ($((SECONDS - t0))s)")
    failures+=("$run" "$(why_failed /tmp/haadm-e2e-test.log)")
  fi
  suffix=""; [[ $access == direct ]] || suffix=-$access; [[ $engine == nginx ]] || suffix=$suffix-$engine; [[ -z $upgrade ]] || suffix=$suffix-day2
  [[ -f .lab/e2e-metrics-$mode.json ]] && cp ".lab/e2e-metrics-$mode.json" "/tmp/haadm-e2e-metrics-${version}-${mode}-${profile}${suffix}.json"
done
bash lab/lab.sh down || rc=1
for ((i = 0; i < ${#failures[@]}; i += 2)); do
  printf '[e2e] why %s failed:\n%s\n' "${failures[i]}" "${failures[i + 1]}" >&2
done
printf '[e2e] %s\n' "${summary[@]}" >&2
exit $rc
