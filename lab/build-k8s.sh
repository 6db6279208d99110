#!/usr/bin/env bash
# Builds the Kubernetes and etcd binaries the lab runs, from Go modules only
# (there is no release download on this network), and caches them by version.
#
#   lab/build-k8s.sh <k8s-version> <etcd-version|none> <cache-dir>
#   lab/build-k8s.sh <k8s-version> e2e_kubeadm <cache-dir>
#
# The second form builds kubeadm's own end-to-end suite (test/e2e_kubeadm of
# the same k8s.io/kubernetes module) as a test binary.
#
# Output: <cache-dir>/k8s-<v>/bin/{kubeadm,kubelet,kubectl,kube-apiserver,...}
#         <cache-dir>/etcd-<v>/bin/{etcd,etcdctl}
#         <cache-dir>/k8s-<v>/bin/e2e_kubeadm.test
set -euo pipefail

k8s=${1:?k8s version, e.g. v1.36.3}
etcd=${2:?etcd version, e.g. v3.6.8}
cache=${3:?cache dir}
proxy_url=$(go env GOPROXY | tr ',|' '\n\n' | grep -v -e '^direct$' -e '^off$' | head -n1)

log() { printf '[lab build] %s\n' "$*" >&2; }

# kubernetes' staging modules are published as v0.<minor>.<patch>.
staging_version() { local v=${1#v1.}; echo "v0.${v}"; }

build_k8s() {
  local out="$cache/k8s-$k8s" src="$cache/src/k8s-$k8s"
  local cmds=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
  if [[ -f "$out/.done" ]]; then log "kubernetes $k8s: cached in $out"; return; fi
  local t0=$SECONDS
  mkdir -p "$src" "$out/bin"
  # The staging list comes from kubernetes' own go.mod so another minor works too.
  curl -fsS -m 60 "$proxy_url/k8s.io/kubernetes/@v/$k8s.mod" -o "$src/kubernetes.mod" || {
    log "cannot fetch k8s.io/kubernetes@$k8s's go.mod from the Go module proxy"; exit 1; }
  local sv; sv=$(staging_version "$k8s")
  {
    echo "module haadm.lab/k8sbin"
    echo
    grep -E '^go [0-9]' "$src/kubernetes.mod"
    echo
    echo "require k8s.io/kubernetes $k8s"
    echo
    echo "replace ("
    sed -n -E 's#^[[:space:]]*(k8s\.io/[a-z0-9-]+) => \./staging/.*#\t\1 => \1 '"$sv"'#p' "$src/kubernetes.mod"
    echo ")"
  } > "$src/go.mod"
  # A stub package keeps the module valid; the binaries are kubernetes' own mains.
  printf 'package k8sbin\n' > "$src/doc.go"
  local commit buildDate minor
  minor=${k8s#v1.}; minor=${minor%%.*}
  # The exact upstream commit is not in the module zip; a fixed, well-formed value
  # keeps kubeadm's version parsing happy and the build reproducible.
  commit=$(printf '%s' "$k8s" | sha1sum | cut -c1-40)
  buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$k8s -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ld+=" -X $p.gitCommit=$commit -X $p.buildDate=$buildDate"
  done
  local pkgs=()
  for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  log "kubernetes $k8s: building ${cmds[*]} (several minutes on 2 cores)"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" -o "$out/bin/" "${pkgs[@]}")
  touch "$out/.done"
  log "kubernetes $k8s: built in $((SECONDS - t0))s"
}

build_etcd() {
  local out="$cache/etcd-$etcd" src="$cache/src/etcd-$etcd"
  if [[ -f "$out/.done" ]]; then log "etcd $etcd: cached in $out"; return; fi
  local t0=$SECONDS
  mkdir -p "$src/etcd" "$src/etcdctl" "$out/bin"
  cat > "$src/go.mod" <<MOD
module haadm.lab/etcdbin

go 1.24

require (
	go.etcd.io/etcd/server/v3 $etcd
	go.etcd.io/etcd/etcdctl/v3 $etcd
)
MOD
  cat > "$src/etcd/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  cat > "$src/etcdctl/main.go" <<'GO'
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() { ctlv3.MustStart() }
GO
  log "etcd $etcd: building etcd, etcdctl"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out/bin/" ./etcd ./etcdctl)
  touch "$out/.done"
  log "etcd $etcd: built in $((SECONDS - t0))s"
}

build_e2e_kubeadm() {
  local out="$cache/k8s-$k8s/bin/e2e_kubeadm.test" src="$cache/src/k8s-$k8s"
  if [[ -x $out ]]; then log "e2e_kubeadm $k8s: cached in $out"; return; fi
  local t0=$SECONDS
  log "e2e_kubeadm $k8s: building kubeadm's e2e suite"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go test -c -trimpath -o "$out.tmp" k8s.io/kubernetes/test/e2e_kubeadm)
  mv "$out.tmp" "$out"
  log "e2e_kubeadm $k8s: built in $((SECONDS - t0))s"
}

build_k8s
case $etcd in
  none) ;;
  e2e_kubeadm) build_e2e_kubeadm ;;
  *) build_etcd ;;
esac
