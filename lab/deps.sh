#!/usr/bin/env bash
# Installs, from Debian packages, what the lab and the tests need on this machine
# (sudo: node tests log in as a user with passwordless sudo).
# Idempotent and quick when everything is there.
set -euo pipefail
pkgs=(containerd runc containernetworking-plugins openssh-server openssh-client
      nginx-light libnginx-mod-stream iproute2 iptables conntrack socat ethtool
      haproxy keepalived kmod util-linux procps curl ca-certificates sudo)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[lab deps] installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian starts the services it installs; the lab runs its own copies inside
  # the nodes, so keep the host's from starting.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
