#!/usr/bin/env bash
# The lab: a real single-master kubeadm cluster on this one machine.
#
#   lab/lab.sh up      bring it up (a healthy lab is left alone and reported)
#   lab/lab.sh down    remove everything it made; a second run is a no-op
#   lab/lab.sh status  say whether it is up and healthy (exit 0) or not
#
# Each node is a network namespace on the bridge haadm0 plus its own mount,
# UTS, IPC and PID namespaces, with lab-init as PID 1 supervising containerd,
# sshd and the kubelet. shaolin runs `kubeadm init` WITHOUT controlPlaneEndpoint
# (the situation haadm exists for); the others join as workers.
#
# Environment: LAB_K8S_VERSION (v1.36.3, or a minor like v1.35 for its newest
# patch), LAB_NODES (3; more nodes for 5-master tests), LAB_STATE, LAB_CACHE,
# LAB_PROFILE: plain (default), or production: Secrets encrypted at rest, an
# audit policy and log, a scheduler configuration file, no kube-proxy and the
# apiserver on port 7443, all set the kubeadm way at init (extraArgs and
# extraVolumes in the ClusterConfiguration).
# LAB_ACCESS: direct (default: root logs in to each node straight from the
# host), or bastion: the nodes accept SSH only from the bastion "gate"
# ($NET.2, a namespace running nothing but sshd), only for the non-root user
# "lab" with passwordless sudo, and .lab/ssh_config jumps through gate.
# LAB_SPARE (0): the last N nodes run (containerd, sshd, the images) but are
# not joined, for a `kubeadm join` of one's own.
# LAB_UPGRADE_TO (none): a second, newer version whose images are imported
# on every node and whose kubeadm, kubelet and kubectl each node can install
# with `lab-install VERSION PACKAGE...` (the lab's apt-get install), so
# `kubeadm upgrade` runs as on real machines. Each node has its own
# /usr/local/bin: installing on one leaves the others on their version.
# LAB_CONTROL_PLANE_ENDPOINT (none): HOST:PORT for kubeadm init's
# controlPlaneEndpoint, a cluster born the way kubeadm supports HA (the
# benchmark's kubeadm join --control-plane baseline).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$REPO/.lab
STATE=${LAB_STATE:-/var/lib/haadm-lab}
CACHE=${LAB_CACHE:-/var/cache/haadm-lab}
K8S_VERSION=${LAB_K8S_VERSION:-v1.36.3}
NODES_COUNT=${LAB_NODES:-3}
PROFILE=${LAB_PROFILE:-plain}
[[ $PROFILE == plain || $PROFILE == production ]] || { echo "[lab] error: LAB_PROFILE=$PROFILE: use plain or production" >&2; exit 1; }
API_PORT=6443; [[ $PROFILE == production ]] && API_PORT=7443
SPARE=${LAB_SPARE:-0}
[[ $SPARE =~ ^[0-9]+$ ]] && ((SPARE < NODES_COUNT)) || { echo "[lab] error: LAB_SPARE=$SPARE: use a number below LAB_NODES ($NODES_COUNT)" >&2; exit 1; }
UPGRADE_TO=${LAB_UPGRADE_TO:-}
CONTROL_PLANE_ENDPOINT=${LAB_CONTROL_PLANE_ENDPOINT:-}
ACCESS=${LAB_ACCESS:-direct}
[[ $ACCESS == direct || $ACCESS == bastion ]] || { echo "[lab] error: LAB_ACCESS=$ACCESS: use direct or bastion" >&2; exit 1; }
NAMES=(shaolin emei wudang huashan kunlun kongtong qingcheng)
BRIDGE=haadm0
NET=10.250.0            # the lab's own /24; nodes have no default route
HOST_IP=$NET.1
GATE=gate GATE_IP=$NET.2 # the bastion (LAB_ACCESS=bastion)
LAB_USER=lab            # bastion mode's login on gate and the nodes: passwordless sudo
LAB_USER_GECOS="haadm lab"  # marks the user as the lab's: down removes only that one
SUDOERS=/etc/sudoers.d/haadm-lab
SERVICE_CIDR=10.96.0.0/12
POD_CIDR=10.244.0.0/16

log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[lab] error: %s\n' "$*" >&2; exit 1; }

node_names() { local i; for ((i = 0; i < NODES_COUNT; i++)); do echo "${NAMES[$i]}"; done; }
# joined_names are the nodes kubeadm init and join make the cluster of.
joined_names() { local i; for ((i = 0; i < NODES_COUNT - SPARE; i++)); do echo "${NAMES[$i]}"; done; }
node_ip() { local i; for ((i = 0; i < ${#NAMES[@]}; i++)); do [[ ${NAMES[$i]} == "$1" ]] && { echo "$NET.$((11 + i))"; return 0; }; done; return 1; }
node_index() { local i; for ((i = 0; i < ${#NAMES[@]}; i++)); do [[ ${NAMES[$i]} == "$1" ]] && { echo "$i"; return 0; }; done; return 1; }
netns() { echo "haadm-$1"; }

# The PID of a node's init (lab-init), as the host sees it: the only child
# of the unshare process whose PID the lab recorded.
init_pid() {
  local p; p=$(cat "$STATE/nodes/$1/pid" 2>/dev/null) || return 1
  [[ -r /proc/$p/cmdline ]] && tr '\0' ' ' < "/proc/$p/cmdline" | grep -q "lab-init $1 " || return 1
  local c; c=$(cat "/proc/$p/task/$p/children" 2>/dev/null | awk '{print $1}')
  [[ -n $c ]] && echo "$c"
}

# in_node N CMD...: run CMD inside node N's namespaces (the way sshd there would).
in_node() {
  local n=$1; shift
  local p; p=$(init_pid "$n") || die "node $n is not running"
  nsenter -t "$p" -m -u -i -n -p -- env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

check_machine() {
  [[ $(id -u) == 0 ]] || die "the lab needs root (it creates network namespaces, bridges and cgroups); run it with sudo"
  command -v ip >/dev/null || die "iproute2 is missing: run lab/deps.sh"
  ip netns add haadm-probe 2>/dev/null && ip netns del haadm-probe || die "cannot create network namespaces here (ip netns add failed)"
  unshare --help 2>&1 | grep -q -- --kill-child || die "util-linux unshare lacks --kill-child (need util-linux >= 2.32)"
  [[ -d /sys/fs/cgroup/cpu && -d /sys/fs/cgroup/memory ]] ||
    die "the lab needs cgroup v1 controllers under /sys/fs/cgroup (found: $(ls /sys/fs/cgroup | tr '\n' ' '))"
}

resolve_version() {
  K8S_VERSION=$(newest_patch "$K8S_VERSION")
  [[ -z $UPGRADE_TO ]] || UPGRADE_TO=$(newest_patch "$UPGRADE_TO")
}

# newest_patch V: V itself, or for a minor like v1.35 its newest release.
newest_patch() {
  if [[ $1 =~ ^v1\.[0-9]+$ ]]; then
    local proxy v; proxy=$(go env GOPROXY | tr ',|' '\n\n' | grep -v -e '^direct$' -e '^off$' | head -n1)
    v=$(curl -fsS -m 30 "$proxy/k8s.io/kubernetes/@v/list" | grep -E "^${1//./\\.}\.[0-9]+$" | sort -V | tail -n1)
    [[ -n $v ]] || die "no release of $1 found on the Go module proxy"
    echo "$v"
  else
    echo "$1"
  fi
}

# etcd_version V: the etcd kubeadm V deploys (3.6.8-0 -> v3.6.8).
etcd_version() {
  "$CACHE/k8s-$1/bin/kubeadm" config images list --kubernetes-version "$1" 2>/dev/null |
    sed -n -E 's#.*/etcd:([0-9.]+)-[0-9]+$#v\1#p'
}

build() {
  local t0=$SECONDS
  mkdir -p "$CACHE/tools"
  (cd "$REPO" && CGO_ENABLED=0 go build -o "$CACHE/tools/" ./lab/cmd/lab-init ./lab/cmd/lab-image ./lab/cmd/lab-pause)
  local v
  for v in "$K8S_VERSION" $UPGRADE_TO; do build_version "$v"; done
  log "binaries and images ready in $((SECONDS - t0))s"
}

# build_version V: Kubernetes V's binaries, its etcd and its images.
build_version() {
  # kubeadm first (etcd's version depends on it), then everything.
  bash "$REPO/lab/build-k8s.sh" "$1" none "$CACHE"
  local ev; ev=$(etcd_version "$1")
  [[ -n $ev ]] || die "cannot read the etcd version from kubeadm $1"
  bash "$REPO/lab/build-k8s.sh" "$1" "$ev" "$CACHE"
  build_images "$1" "$ev"
}

# build_images K8S ETCD: the images kubeadm K8S lists, as tarballs.
build_images() {
  local K8S_VERSION=$1 ETCD_VERSION=$2
  local dir=$CACHE/images-$K8S_VERSION
  # The images hold the lab's own tools: a changed tool rebuilds them.
  local stamp; stamp=$(cat "$CACHE/tools/lab-pause" "$CACHE/tools/lab-image" | sha256sum | cut -c1-16)
  [[ -f $dir/.done && $(cat "$dir/.done") == "$stamp" ]] && return
  rm -rf "$dir"; mkdir -p "$dir"
  local kbin=$CACHE/k8s-$K8S_VERSION/bin ebin=$CACHE/etcd-$ETCD_VERSION/bin
  local ref stage
  while read -r ref; do
    stage=$(mktemp -d); mkdir -p "$stage/usr/local/bin" "$stage/tmp" "$stage/etc"
    local entry=""
    case $ref in
      */kube-apiserver:* | */kube-controller-manager:* | */kube-scheduler:*)
        local c=${ref##*/}; c=${c%%:*}; cp "$kbin/$c" "$stage/usr/local/bin/" ;;
      */kube-proxy:*) stage_kube_proxy "$stage" "$kbin" ;;
      */etcd:*) cp "$ebin/etcd" "$ebin/etcdctl" "$stage/usr/local/bin/" ;;
      */pause:*) cp "$CACHE/tools/lab-pause" "$stage/pause"; entry=/pause ;;
      */coredns:*) rm -rf "$stage"; continue ;;   # the lab skips the CoreDNS addon
      *) die "no recipe for image $ref" ;;
    esac
    "$CACHE/tools/lab-image" -rootfs "$stage" -tag "$ref" -out "$dir/$(echo "${ref##*/}" | tr ':' '_').tar" ${entry:+-entrypoint "$entry"}
    rm -rf "$stage"
  done < <("$kbin/kubeadm" config images list --kubernetes-version "$K8S_VERSION")
  echo "$stamp" > "$dir/.done"
}

# kube-proxy programs iptables: ship the host's xtables-nft-multi, the names
# that point at it, its extensions and every library they load.
stage_kube_proxy() {
  local stage=$1 kbin=$2
  cp "$kbin/kube-proxy" "$stage/usr/local/bin/"
  local xt; xt=$(readlink -f "$(command -v xtables-nft-multi || echo /usr/sbin/xtables-nft-multi)")
  [[ -x $xt ]] || die "xtables-nft-multi not found (install iptables)"
  mkdir -p "$stage/usr/sbin"
  cp "$xt" "$stage/usr/sbin/xtables-nft-multi"
  local n
  for n in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore \
    iptables-nft iptables-nft-save iptables-nft-restore ip6tables-nft ip6tables-nft-save ip6tables-nft-restore; do
    ln -s xtables-nft-multi "$stage/usr/sbin/$n"
  done
  local xtdir=/usr/lib/x86_64-linux-gnu/xtables
  mkdir -p "$stage$xtdir"; cp "$xtdir"/*.so "$stage$xtdir/"
  local lib
  for lib in $( (ldd "$xt"; for so in "$xtdir"/*.so; do ldd "$so"; done) 2>/dev/null | grep -o '/[^ ]*\.so[^ ]*' | sort -u); do
    mkdir -p "$stage$(dirname "$lib")"; cp -L "$lib" "$stage$lib"
  done
  # /lib64 holds the loader on Debian; keep the usr-merge symlinks.
  [[ -e $stage/lib64 ]] || ln -s usr/lib64 "$stage/lib64" 2>/dev/null || true
  mkdir -p "$stage/run/xtables" "$stage/var/run"
}

# make_packages is the lab's package repository, $STATE/pkgs/VERSION/, one
# directory per version the lab has (hard links into the cache): what
# lab-install installs from.
make_packages() {
  local v d
  for v in "$K8S_VERSION" $UPGRADE_TO; do
    d=$STATE/pkgs/$v; mkdir -p "$d"
    cp -l "$CACHE/k8s-$v/bin"/{kubeadm,kubelet,kubectl} "$d/" 2>/dev/null || cp "$CACHE/k8s-$v/bin"/{kubeadm,kubelet,kubectl} "$d/"
  done
  d=$STATE/pkgs/tools; mkdir -p "$d"
  cp "$CACHE/etcd-$(etcd_version "$K8S_VERSION")/bin/etcdctl" "$REPO/lab/files/systemctl" "$REPO/lab/files/lab-kubelet" "$d/"
  sed "s#@PKGS@#$STATE/pkgs#" "$REPO/lab/files/lab-install" > "$d/lab-install"; chmod 0755 "$d/lab-install"
}

# install_bin N: node N's own /usr/local/bin, the lab's version installed.
install_bin() {
  local b=$STATE/nodes/$1/bin
  mkdir -p "$b"
  cp "$STATE/pkgs/tools"/* "$b/"
  lab_install_into "$b" "$K8S_VERSION" kubeadm kubelet kubectl
}

# lab_install_into DIR VERSION PACKAGE...: what lab-install does on a node,
# from the host, for a node not started yet.
lab_install_into() {
  local b=$1 v=$2 p; shift 2
  for p in "$@"; do
    { cp -l "$STATE/pkgs/$v/$p" "$b/.$p.new" 2>/dev/null || cp "$STATE/pkgs/$v/$p" "$b/.$p.new"; } && mv -f "$b/.$p.new" "$b/$p"
  done
}

write_node_files() {
  local n=$1 ip=$2 idx=$3 root=$STATE/nodes/$1/root
  mkdir -p "$root"/{etc/kubernetes,etc/containerd,etc/cni/net.d,etc/ssh,root/.kube,var/log,tmp,run,etc/nginx,etc/haproxy,etc/keepalived}
  chmod 1777 "$root/tmp"
  {
    echo "127.0.0.1 localhost"
    echo "::1 localhost ip6-localhost ip6-loopback"
    local m; for m in $(node_names); do echo "$(node_ip "$m") $m"; done
  } > "$root/etc/hosts"
  # Nothing may leave the machine: a resolver on loopback that is not there
  # makes every lookup of an unknown name fail at once.
  echo "nameserver 127.0.0.1" > "$root/etc/resolv.conf"
  cat > "$root/etc/containerd/config.toml" <<EOF
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$(grep /pause: <("$CACHE/k8s-$K8S_VERSION/bin/kubeadm" config images list --kubernetes-version "$K8S_VERSION"))"
  tolerate_missing_hugepages_controller = true
  # this machine denies negative oom_score_adj; without this runc fails with
  # "can't get final child's PID from pipe: EOF"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
EOF
  cat > "$root/etc/cni/net.d/10-lab.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "lab",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.$((100 + idx)).0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  [[ -f $root/etc/ssh/ssh_host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -C "root@$n" -f "$root/etc/ssh/ssh_host_ed25519_key"
  cp "$STATE/ssh/id_ed25519.pub" "$root/etc/ssh/authorized_keys"
  # Bastion mode: what an operator would have, root never logs in and the
  # one user may come from the bastion only.
  local login="PermitRootLogin prohibit-password"
  [[ $ACCESS == bastion ]] && login="PermitRootLogin no
AllowUsers $LAB_USER@$GATE_IP"
  cat > "$root/etc/ssh/sshd_config" <<EOF
# lab node $n
ListenAddress $ip
HostKey /etc/ssh/ssh_host_ed25519_key
$login
AuthorizedKeysFile /etc/ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile /run/sshd.pid
Subsystem sftp internal-sftp
MaxSessions 64
MaxStartups 64:30:128
EOF
  # Each node gets the host's nginx and haproxy configuration trees to start
  # from, so a proxy installed "on the node" looks like a fresh Debian install.
  [[ -f $root/etc/nginx/nginx.conf ]] || cp -a /etc/nginx/. "$root/etc/nginx/"
  [[ -f $root/etc/haproxy/haproxy.cfg || ! -d /etc/haproxy ]] || cp -a /etc/haproxy/. "$root/etc/haproxy/"
  local ss
  for ss in /sys/fs/cgroup/*/; do
    [[ -L ${ss%/} ]] && continue
    mkdir -p "$ss/haadm-$n"
    if [[ $ss == */cpuset/ ]]; then
      cat "$ss/cpuset.cpus" > "$ss/haadm-$n/cpuset.cpus"
      cat "$ss/cpuset.mems" > "$ss/haadm-$n/cpuset.mems"
    fi
  done
}

make_network() {
  sysctl -qw net.ipv4.ip_forward=1 >/dev/null || true
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr replace "$HOST_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local n i
  for n in $(node_names); do
    i=$(node_index "$n")
    local ns; ns=$(netns "$n")
    ip netns list | grep -qw "^$ns" || ip netns add "$ns"
    # A veth left by a namespace that is still being torn down would keep
    # the new namespace without its eth0: always start from a fresh pair.
    ip link del "hveth$i" 2>/dev/null || true
    ip link add "hveth$i" type veth peer name eth0 netns "$ns"
    ip link set "hveth$i" master "$BRIDGE" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr replace "$(node_ip "$n")/24" dev eth0
    ip -n "$ns" link set eth0 up
    # Service IPs are DNATed by kube-proxy after routing; without a route they
    # fail before that. The route stays on the bridge: there is no default route.
    ip -n "$ns" route replace "$SERVICE_CIDR" dev eth0
  done
  if [[ $ACCESS == bastion ]]; then
    ip netns list | grep -qw "^$(netns $GATE)" || ip netns add "$(netns $GATE)"
    ip link del hvethgate 2>/dev/null || true
    ip link add hvethgate type veth peer name eth0 netns "$(netns $GATE)"
    ip link set hvethgate master "$BRIDGE" up
    ip -n "$(netns $GATE)" link set lo up
    ip -n "$(netns $GATE)" addr replace "$GATE_IP/24" dev eth0
    ip -n "$(netns $GATE)" link set eth0 up
    # Each node's own firewall turns away SSH from anywhere but the bastion
    # (kube-proxy adds its chains and leaves INPUT's rules alone).
    for n in $(node_names); do
      nsenter --net="/run/netns/$(netns "$n")" -- iptables -A INPUT -p tcp --dport 22 ! -s "$GATE_IP" -j REJECT --reject-with tcp-reset
    done
  fi
  # Node-to-node traffic crosses the host bridge: keep the host's firewall out of it.
  if [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
    iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null || iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  fi
}

# close_fds closes every descriptor but stdin, stdout and stderr, for the
# lab's long-running processes: a lock held on the lab (flock FILE lab.sh up)
# must end with `up`, not live on in the nodes until `down`.
close_fds() {
  local fd
  for fd in $(ls "/proc/$BASHPID/fd"); do ((fd > 2)) && eval "exec $fd>&-"; done
  return 0
}

start_node() {
  local n=$1 ip; ip=$(node_ip "$n")
  if init_pid "$n" >/dev/null; then return; fi
  mkdir -p "$STATE/nodes/$n"
  (close_fds; exec setsid nsenter --net="/run/netns/$(netns "$n")" -- \
    unshare --mount --uts --ipc --pid --fork --kill-child --mount-proc --propagation private \
    "$CACHE/tools/lab-init" "$n" "$ip" "$STATE/nodes/$n/root" "$STATE/nodes/$n/bin") \
    > "$STATE/nodes/$n/init.log" 2>&1 < /dev/null &
  echo $! > "$STATE/nodes/$n/pid"
}

# The lab's user, for bastion mode: the nodes share the host's /etc (but for
# the directories lab-init binds per node), so one useradd and one sudoers
# file make it exist, with passwordless sudo, on every node. Its password
# is "*", not useradd's "!": sshd without PAM takes "!" for a locked account.
make_user() {
  if ! id -u "$LAB_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --comment "$LAB_USER_GECOS" "$LAB_USER"
  fi
  [[ $(getent passwd "$LAB_USER" | cut -d: -f5) == "$LAB_USER_GECOS" ]] ||
    die "user $LAB_USER exists and is not the lab's (its comment is not \"$LAB_USER_GECOS\"): remove it or pick another machine"
  usermod --password '*' "$LAB_USER"
  echo "$LAB_USER ALL=(ALL:ALL) NOPASSWD: ALL" > "$SUDOERS.tmp"
  chmod 0440 "$SUDOERS.tmp"
  visudo -cqf "$SUDOERS.tmp" || die "visudo rejects $SUDOERS.tmp"
  mv "$SUDOERS.tmp" "$SUDOERS"
}

# The bastion: sshd alone in namespace haadm-gate, PID 1 of its own PID
# namespace (it dies with the recorded unshare), with a private /run for its
# privilege separation directory and its host key and config under $STATE/gate.
write_gate_files() {
  local d=$STATE/gate
  mkdir -p "$d"
  ssh-keygen -q -t ed25519 -N '' -C "root@$GATE" -f "$d/ssh_host_ed25519_key"
  cp "$STATE/ssh/id_ed25519.pub" "$d/authorized_keys"
  cat > "$d/sshd_config" <<EOF
# lab bastion $GATE
ListenAddress $GATE_IP
HostKey $d/ssh_host_ed25519_key
PermitRootLogin no
AllowUsers $LAB_USER
AuthorizedKeysFile $d/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
X11Forwarding no
PidFile /run/sshd.pid
MaxSessions 64
MaxStartups 64:30:128
EOF
}

# gate_pid: the recorded PID of the bastion's unshare, checked against its
# command line (its last arguments are the gate's name and sshd_config).
gate_pid() {
  local p; p=$(cat "$STATE/gate/pid" 2>/dev/null) || return 1
  [[ -r /proc/$p/cmdline ]] && tr '\0' ' ' < "/proc/$p/cmdline" | grep -q "^unshare .* $GATE $STATE/gate/sshd_config $" || return 1
  echo "$p"
}

start_gate() {
  if gate_pid >/dev/null; then return; fi
  (close_fds; exec setsid nsenter --net="/run/netns/$(netns $GATE)" -- \
    unshare --mount --uts --ipc --pid --fork --kill-child --mount-proc --propagation private \
    /bin/sh -c 'hostname "$0" && mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -m 0755 /run/sshd && exec /usr/sbin/sshd -D -e -f "$1"' \
    "$GATE" "$STATE/gate/sshd_config") > "$STATE/gate/sshd.log" 2>&1 < /dev/null &
  echo $! > "$STATE/gate/pid"
}

wait_for() { # wait_for SECONDS WHAT CMD...
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || die "timed out after ${t}s waiting for $what"
    sleep 1
  done
}

kubeadm_init_config() {
  local ip; ip=$(node_ip shaolin)
  local skip="addon/coredns" cluster_extra=""
  if [[ $PROFILE == production ]]; then
    skip="addon/coredns, addon/kube-proxy"
    cluster_extra=$(cat <<'EOF'
apiServer:
  extraArgs:
  - {name: encryption-provider-config, value: /etc/kubernetes/enc/enc.yaml}
  - {name: audit-policy-file, value: /etc/kubernetes/audit/policy.yaml}
  - {name: audit-log-path, value: /var/log/kubernetes/audit/audit.log}
  - {name: audit-log-maxbackup, value: "2"}
  extraVolumes:
  - {name: enc, hostPath: /etc/kubernetes/enc, mountPath: /etc/kubernetes/enc, readOnly: true, pathType: DirectoryOrCreate}
  - {name: audit-policy, hostPath: /etc/kubernetes/audit/policy.yaml, mountPath: /etc/kubernetes/audit/policy.yaml, readOnly: true, pathType: File}
  - {name: audit-log, hostPath: /var/log/kubernetes/audit, mountPath: /var/log/kubernetes/audit, pathType: DirectoryOrCreate}
scheduler:
  extraArgs:
  - {name: config, value: /etc/kubernetes/scheduler-config.yaml}
  extraVolumes:
  - {name: scheduler-config, hostPath: /etc/kubernetes/scheduler-config.yaml, mountPath: /etc/kubernetes/scheduler-config.yaml, readOnly: true, pathType: File}
EOF
)
  fi
  cat <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $ip
  bindPort: $API_PORT
nodeRegistration:
  name: shaolin
  criSocket: unix:///run/containerd/containerd.sock
  ignorePreflightErrors: [SystemVerification, Swap, FileContent--proc-sys-net-bridge-bridge-nf-call-iptables, FileExisting-crictl]
skipPhases: [$skip]
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $K8S_VERSION
clusterName: kubernetes
${CONTROL_PLANE_ENDPOINT:+controlPlaneEndpoint: $CONTROL_PLANE_ENDPOINT}
networking:
  serviceSubnet: $SERVICE_CIDR
  podSubnet: $POD_CIDR
  dnsDomain: cluster.local
$cluster_extra
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
imageGCHighThresholdPercent: 100
evictionHard:
  memory.available: "0%"
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
conntrack:
  maxPerCore: 0
EOF
}

# production_files puts on shaolin, before kubeadm init, what the production
# profile's flags name: an encryption configuration with a fresh aescbc key,
# an audit policy and a scheduler configuration.
production_files() {
  local root=$STATE/nodes/shaolin/root/etc/kubernetes
  mkdir -p "$root/enc" "$root/audit"
  cat > "$root/enc/enc.yaml" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - aescbc:
      keys:
      - name: key1
        secret: $(head -c 32 /dev/urandom | base64)
  - identity: {}
EOF
  chmod 600 "$root/enc/enc.yaml"
  cat > "$root/audit/policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  nonResourceURLs: ["/readyz*", "/livez*", "/healthz*", "/version"]
- level: Metadata
EOF
  cat > "$root/scheduler-config.yaml" <<'EOF'
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: /etc/kubernetes/scheduler.conf
leaderElection:
  leaderElect: true
profiles:
- schedulerName: default-scheduler
EOF
}

write_access_files() {
  mkdir -p "$OUT"
  cp "$STATE/nodes/shaolin/root/etc/kubernetes/admin.conf" "$OUT/kubeconfig"
  chmod 600 "$OUT/kubeconfig"
  : > "$STATE/ssh/known_hosts"
  local n
  for n in $(node_names); do
    echo "$n,$(node_ip "$n") $(cut -d' ' -f1,2 "$STATE/nodes/$n/root/etc/ssh/ssh_host_ed25519_key.pub")" >> "$STATE/ssh/known_hosts"
  done
  if [[ $ACCESS == bastion ]]; then
    echo "$GATE,$GATE_IP $(cut -d' ' -f1,2 "$STATE/gate/ssh_host_ed25519_key.pub")" >> "$STATE/ssh/known_hosts"
    write_bastion_ssh_config; return
  fi
  {
    echo "# haadm lab: ssh -F $OUT/ssh_config NODE CMD"
    for n in $(node_names); do
      printf 'Host %s\n  HostName %s\n  User root\n' "$n" "$(node_ip "$n")"
      ssh_config_common
    done
  } > "$OUT/ssh_config"
}

# ssh_config_common is what every Host entry of the lab's ssh_config has
# after its address and user.
ssh_config_common() {
  cat <<EOF
  IdentityFile $STATE/ssh/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $STATE/ssh/known_hosts
  StrictHostKeyChecking yes
  LogLevel ERROR
  BatchMode yes
EOF
}

write_bastion_ssh_config() {
  local n
  {
    echo "# haadm lab: ssh -F $OUT/ssh_config NODE CMD, through the bastion $GATE as $LAB_USER (sudo -n for root)"
    for n in "$GATE" $(node_names); do
      echo "Host $n"
      if [[ $n == "$GATE" ]]; then echo "  HostName $GATE_IP"; else echo "  HostName $(node_ip "$n")"; fi
      echo "  User $LAB_USER"
      [[ $n == "$GATE" ]] || echo "  ProxyJump $GATE"
      ssh_config_common
    done
  } > "$OUT/ssh_config"
}

kubectl_host() { "$CACHE/k8s-$K8S_VERSION/bin/kubectl" --kubeconfig "$OUT/kubeconfig" "$@"; }

# lab_version is what $STATE/version records: what `up` built, so a lab of
# another version, size, profile or access mode is rebuilt.
lab_version() { echo "$K8S_VERSION $NODES_COUNT $PROFILE $ACCESS spare=$SPARE upgrade=${UPGRADE_TO:-none}${CONTROL_PLANE_ENDPOINT:+ endpoint=$CONTROL_PLANE_ENDPOINT}"; }

healthy() {
  [[ -f $STATE/version && $(cat "$STATE/version") == "$(lab_version)" ]] || return 1
  local n
  for n in $(node_names); do init_pid "$n" >/dev/null || return 1; done
  if [[ $ACCESS == bastion ]]; then gate_pid >/dev/null || return 1; fi
  [[ -f $OUT/kubeconfig ]] || return 1
  local ready
  ready=$(kubectl_host get nodes --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l) || return 1
  ((ready == NODES_COUNT - SPARE))
}

all_ready() {
  local ready
  ready=$(kubectl_host get nodes --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l)
  ((ready == NODES_COUNT - SPARE))
}

kube_proxy_running() {
  local running
  running=$(kubectl_host -n kube-system get pods -l k8s-app=kube-proxy --no-headers 2>/dev/null | awk '$3 == "Running"' | wc -l)
  ((running == NODES_COUNT - SPARE))
}

up() {
  local t0=$SECONDS
  check_machine
  resolve_version
  if healthy; then
    log "lab is up and healthy ($K8S_VERSION, $NODES_COUNT nodes, $PROFILE, $ACCESS access); nothing to do"
    next_steps; return
  fi
  if [[ -d $STATE ]] || ip link show "$BRIDGE" >/dev/null 2>&1; then
    if [[ -f $STATE/version && $(cat "$STATE/version") != "$(lab_version)" ]]; then
      log "found a lab of another kind ($(cat "$STATE/version"), want $(lab_version)): removing it first"
    else
      log "found a stopped or half-built lab: removing it first"
    fi
    down
  fi
  bash "$REPO/lab/deps.sh"
  build
  log "creating $NODES_COUNT nodes on $BRIDGE ($NET.0/24)"
  mkdir -p "$STATE/ssh" "$STATE/nodes"
  make_packages
  ssh-keygen -q -t ed25519 -N '' -C haadm-lab -f "$STATE/ssh/id_ed25519"
  make_network
  if [[ $ACCESS == bastion ]]; then
    log "bastion $GATE ($GATE_IP): only sshd; the nodes accept SSH from it only, for $LAB_USER"
    make_user; write_gate_files; start_gate
  fi
  local n
  for n in $(node_names); do write_node_files "$n" "$(node_ip "$n")" "$(node_index "$n")"; install_bin "$n"; done
  for n in $(node_names); do start_node "$n"; done
  local imports=()
  for n in $(node_names); do
    wait_for 60 "containerd on $n" in_node "$n" test -S /run/containerd/containerd.sock
    (
      for tar in "$CACHE/images-$K8S_VERSION"/*.tar ${UPGRADE_TO:+"$CACHE/images-$UPGRADE_TO"/*.tar}; do
        in_node "$n" ctr -n k8s.io images import --platform linux/amd64 "$tar" >/dev/null
      done
    ) &
    imports+=($!)
  done
  # Only the imports: the nodes themselves are children of this shell too.
  local j; for j in "${imports[@]}"; do wait "$j" || die "importing images failed"; done
  log "images imported; kubeadm init on shaolin"
  kubeadm_init_config > "$STATE/nodes/shaolin/root/etc/kubernetes/lab-kubeadm.yaml"
  if [[ $PROFILE == production ]]; then production_files; fi
  in_node shaolin kubeadm init --config /etc/kubernetes/lab-kubeadm.yaml > "$STATE/nodes/shaolin/kubeadm-init.log" 2>&1 ||
    { tail -n 40 "$STATE/nodes/shaolin/kubeadm-init.log" >&2; die "kubeadm init failed on shaolin (full log: $STATE/nodes/shaolin/kubeadm-init.log)"; }
  local join; join=$(in_node shaolin kubeadm token create --print-join-command)
  for n in $(joined_names); do
    [[ $n == shaolin ]] && continue
    # shellcheck disable=SC2086
    in_node "$n" $join --cri-socket unix:///run/containerd/containerd.sock \
      --ignore-preflight-errors=SystemVerification,Swap,FileContent--proc-sys-net-bridge-bridge-nf-call-iptables,FileExisting-crictl \
      > "$STATE/nodes/$n/kubeadm-join.log" 2>&1 ||
      { tail -n 40 "$STATE/nodes/$n/kubeadm-join.log" >&2; die "kubeadm join failed on $n (log: $STATE/nodes/$n/kubeadm-join.log)"; }
  done
  write_access_files
  wait_for 300 "all nodes Ready" all_ready
  if [[ $PROFILE != production ]]; then wait_for 300 "kube-proxy Running on every node" kube_proxy_running; fi
  if [[ $ACCESS == bastion ]]; then wait_for 30 "sshd on $GATE" gate_pid; fi
  lab_version > "$STATE/version"
  local via=""; [[ $ACCESS == bastion ]] && via="(SSH through $GATE as $LAB_USER only)"
  local extra=""
  ((SPARE == 0)) || extra+=" (not joined: $(node_names | tail -n "$SPARE" | tr '\n' ' '))"
  [[ -z $UPGRADE_TO ]] || extra+=" ($UPGRADE_TO installable: lab-install $UPGRADE_TO kubeadm)"
  log "lab up in $((SECONDS - t0))s: $(node_names | tr '\n' ' ')$via$extra"
  next_steps
}

next_steps() {
  local sudo=""; [[ $ACCESS == bastion ]] && sudo="sudo -n "
  cat >&2 <<EOF

  kubectl --kubeconfig $OUT/kubeconfig get nodes
  ssh -F $OUT/ssh_config emei ${sudo}hostname
  bin/haadm --kubeconfig $OUT/kubeconfig --ssh-config $OUT/ssh_config status
  bin/haadm --kubeconfig $OUT/kubeconfig --ssh-config $OUT/ssh_config promote --nodes emei,wudang
  make lab-down     # remove it all

EOF
}

# down removes every kind of leftover, also when the processes are long gone.
down() {
  local n p
  for d in "$STATE"/nodes/*/; do
    [[ -d $d ]] || continue
    n=$(basename "$d")
    p=$(cat "$d/pid" 2>/dev/null || true)
    # Only the lab's own processes, by recorded PID, checked against their command line.
    if [[ -n $p && -r /proc/$p/cmdline ]] && tr '\0' ' ' < "/proc/$p/cmdline" | grep -q "lab-init $n "; then
      kill -KILL "$p" 2>/dev/null || true
      local i; for ((i = 0; i < 50; i++)); do [[ -e /proc/$p ]] || break; sleep 0.1; done
    fi
  done
  if p=$(gate_pid); then
    kill -KILL "$p" 2>/dev/null || true
    local i; for ((i = 0; i < 50; i++)); do [[ -e /proc/$p ]] || break; sleep 0.1; done
  fi
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^haadm-' || true); do ip netns del "$ns" || true; done
  local l
  for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^hveth([0-9]+|gate)$' || true); do
    ip link del "$l" 2>/dev/null || true
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
  while iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do :; done
  local cg
  for cg in /sys/fs/cgroup/*/haadm-*; do
    [[ -d $cg ]] || continue
    # Processes die asynchronously after PID 1 of their namespace does.
    local i; for ((i = 0; i < 50; i++)); do find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null; [[ -d $cg ]] || break; sleep 0.2; done
    [[ -d $cg ]] && log "warning: cgroup $cg is still busy"
  done
  if [[ -d $STATE ]]; then
    # Nothing should be mounted there (mounts lived in the nodes' namespaces),
    # but never rm -rf through a mount.
    if grep -q " $STATE/" /proc/self/mounts; then
      grep " $STATE/" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r umount -l
    fi
    rm -rf "$STATE"
  fi
  rm -rf "$OUT"
  rm -f "$SUDOERS" "$SUDOERS.tmp"
  # The bastion's user, if the lab made it (its processes died with the nodes).
  if [[ $(getent passwd "$LAB_USER" | cut -d: -f5) == "$LAB_USER_GECOS" ]]; then
    userdel --remove "$LAB_USER" 2>/dev/null || userdel "$LAB_USER" || log "warning: cannot remove user $LAB_USER"
  fi
  log "lab removed"
}

status() {
  resolve_version
  if healthy; then log "lab is up and healthy"; kubectl_host get nodes -o wide; return; fi
  if [[ -f $STATE/version && $(cat "$STATE/version") != "$(lab_version)" ]]; then
    log "the lab here is another kind ($(cat "$STATE/version"), asked for $(lab_version): set LAB_K8S_VERSION, LAB_NODES, LAB_PROFILE, LAB_ACCESS)"
  else
    log "lab is not up (or not healthy)"
  fi
  return 1
}

case ${1:-} in
  up) up ;;
  down) check_machine; down ;;
  status) status ;;
  build) check_machine; resolve_version; bash "$REPO/lab/deps.sh"; build ;;
  exec) shift; in_node "$@" ;;
  # e2e-kubeadm: kubeadm's own e2e suite for the lab's version; prints its path.
  e2e-kubeadm) resolve_version; bash "$REPO/lab/build-k8s.sh" "$K8S_VERSION" e2e_kubeadm "$CACHE" >&2; echo "$CACHE/k8s-$K8S_VERSION/bin/e2e_kubeadm.test" ;;
  *) echo "usage: $0 up|down|status|build|exec NODE CMD...|e2e-kubeadm" >&2; exit 2 ;;
esac
