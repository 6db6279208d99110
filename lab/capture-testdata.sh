#!/usr/bin/env bash
# Captures, from a running lab, the files unit tests read (testdata/<minor>/):
# static-pod manifests, kubeconfigs (client keys redacted), certificates
# (never keys), and the ConfigMaps haadm rewrites.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
ssh_() { ssh -F .lab/ssh_config "$@"; }
kubectl_() { "${KUBECTL:-kubectl}" --kubeconfig .lab/kubeconfig "$@"; }
ver=$(ssh_ shaolin kubeadm version -o short)
minor=$(echo "$ver" | sed -E 's/^v([0-9]+\.[0-9]+).*/v\1/')
out=testdata/$minor
redact() { sed -E 's/(client-key-data: ).*/\1REDACTED/'; }
for n in $(awk '/^Host /{print $2}' .lab/ssh_config); do
  d=$out/$n/etc/kubernetes
  mkdir -p "$d"
  for f in $(ssh_ "$n" 'cd /etc/kubernetes && ls *.conf 2>/dev/null || true'); do
    ssh_ "$n" cat "/etc/kubernetes/$f" | redact > "$d/$f"
  done
  if ssh_ "$n" test -d /etc/kubernetes/manifests; then
    mkdir -p "$d/manifests"
    for f in $(ssh_ "$n" 'cd /etc/kubernetes/manifests && ls *.yaml 2>/dev/null || true'); do
      ssh_ "$n" cat "/etc/kubernetes/manifests/$f" > "$d/manifests/$f"
    done
  fi
  for c in $(ssh_ "$n" 'cd /etc/kubernetes/pki 2>/dev/null && find . -name "*.crt" | sort || true'); do
    mkdir -p "$(dirname "$d/pki/$c")"
    ssh_ "$n" cat "/etc/kubernetes/pki/$c" > "$d/pki/$c"
  done
  mkdir -p "$out/$n/var/lib/kubelet"
  ssh_ "$n" cat /var/lib/kubelet/kubeadm-flags.env > "$out/$n/var/lib/kubelet/kubeadm-flags.env"
done
mkdir -p "$out/configmaps"
kubectl_ -n kube-system get cm kubeadm-config -o yaml > "$out/configmaps/kubeadm-config.yaml"
kubectl_ -n kube-system get cm kube-proxy -o yaml > "$out/configmaps/kube-proxy.yaml"
kubectl_ -n kube-public get cm cluster-info -o yaml > "$out/configmaps/cluster-info.yaml"
kubectl_ -n kube-system get cm kubelet-config -o yaml > "$out/configmaps/kubelet-config.yaml"
kubectl_ get nodes -o yaml > "$out/nodes.yaml"
echo "captured $ver into $out" >&2
