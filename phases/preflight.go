package phases

import (
	"context"
	"fmt"
	"net"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"

	"github.com/haadm/haadm/etcdm"
)

// Supported Kubernetes minors: kubeadm's learner-based etcd join and the
// manifest layout haadm edits are the same across these.
const (
	minMinor = 31
	maxMinor = 36
)

// Preflight refuses bad input before anything changes: unknown or
// unreachable nodes, mismatched versions, an unhealthy etcd, stale members,
// busy ports, missing load-balancer software.
type Preflight struct{}

func (Preflight) Name() string { return "preflight" }
func (Preflight) Description() string {
	return "check nodes, versions, etcd health, stale members and ports; change nothing"
}

func (Preflight) Check(context.Context, *Cluster) (bool, string, error) {
	return false, "always runs", nil
}

func (Preflight) Apply(ctx context.Context, c *Cluster) error {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	v, err := version.ParseGeneric(c.Facts.KubernetesVersion)
	if err != nil {
		add("kubeadm-config: kubernetesVersion %q does not parse: %v", c.Facts.KubernetesVersion, err)
	} else if v.Major() != 1 || v.Minor() < minMinor || v.Minor() > maxMinor {
		add("cluster runs Kubernetes %s; haadm supports v1.%d to v1.%d", c.Facts.KubernetesVersion, minMinor, maxMinor)
	}
	if c.Facts.ExternalEtcd {
		add("kubeadm-config uses an external etcd; haadm grows the stacked etcd kubeadm runs on the control plane only")
	}
	if len(c.New) == 0 {
		add("--nodes names no node to promote")
	}
	for _, n := range c.New {
		if n.KubeletVersion != c.First.KubeletVersion {
			add("node %s runs kubelet %s but %s runs %s: upgrade it to the same version first (kubeadm upgrade node)", n.Name, n.KubeletVersion, c.First.Name, c.First.KubeletVersion)
		}
		if !n.Ready {
			add("node %s is not Ready: fix it before promoting it", n.Name)
		}
		if n.IP == "" {
			add("node %s has no InternalIP address in its status", n.Name)
		}
	}
	for _, name := range keys(c.Hosts) {
		h := c.Hosts[name]
		// SSH must land on the node the API calls by that name, or haadm
		// would write one node's certificates onto another.
		out, err := h.Output(ctx, "ip -o addr show")
		if err != nil {
			add("node %s: %v", name, err)
			continue
		}
		if ip := c.Nodes[name].IP; ip != "" && !strings.Contains(out, " "+ip+"/") {
			add("node %s: ssh reaches a machine without the node's address %s: check the ssh config entry for %s", name, ip, name)
		}
	}
	// The shared material the certs phase copies, and the identity haadm uses for etcd.
	for _, p := range append(sharedPKIFiles(), "apiserver-etcd-client.crt", "apiserver-etcd-client.key") {
		if _, ok, err := c.readFile(ctx, c.First.Name, pkiDir+"/"+p); err != nil || !ok {
			add("node %s: %s/%s is missing or unreadable (%v): haadm copies the cluster's CAs from the first master", c.First.Name, pkiDir, p, err)
		}
	}
	if len(problems) == 0 {
		problems = append(problems, c.checkEtcd(ctx)...)
		problems = append(problems, c.checkPorts(ctx)...)
		problems = append(problems, c.checkLBSoftware(ctx)...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("preflight found %d problem(s); nothing was changed:\n  - %s", len(problems), strings.Join(problems, "\n  - "))
	}
	c.Log.Step("preflight", "", 0, fmt.Sprintf("first master %s, promoting %s, endpoint %s", c.First.Name, names(c.New), c.Opts.Endpoint))
	return nil
}

func (c *Cluster) peerURL(n NodeInfo) string { return "https://" + net.JoinHostPort(n.IP, "2380") }

func (c *Cluster) checkEtcd(ctx context.Context) []string {
	cli, err := c.EtcdClient(ctx)
	if err != nil {
		return []string{fmt.Sprintf("etcd: %v", err)}
	}
	var problems []string
	ok, why, err := etcdm.QuorumSafe(ctx, cli)
	if err != nil {
		return []string{fmt.Sprintf("etcd: %v", err)}
	}
	if !ok {
		problems = append(problems, "etcd is not healthy, adding a member now could cost quorum: "+why)
	}
	members, err := etcdm.List(ctx, cli)
	if err != nil {
		return append(problems, fmt.Sprintf("etcd member list: %v", err))
	}
	var known []string
	for _, m := range c.Masters() {
		known = append(known, c.peerURL(m))
	}
	for name, n := range c.Nodes {
		if n.ControlPlane && name != c.First.Name {
			known = append(known, c.peerURL(n))
		}
	}
	for _, m := range etcdm.Stale(members, known) {
		// An unstarted learner of a node being promoted is a join that
		// stopped half way: the etcd phase resumes it.
		if !m.Started() && m.IsLearner && (c.isNewPeer(m.PeerURLs) || c.Opts.RemoveStaleLearners) {
			continue
		}
		problems = append(problems, fmt.Sprintf("etcd member %x (name %q, peer %s) is stale: it is not a control-plane node of this cluster or never started; if it is a leftover of a failed join remove it with `etcdctl member remove %x` on %s%s",
			m.ID, m.Name, strings.Join(m.PeerURLs, ","), m.ID, c.First.Name, staleHint(m)))
	}
	return problems
}

func staleHint(m etcdm.Member) string {
	if !m.Started() && m.IsLearner {
		return ", or re-run with --remove-stale-learners"
	}
	return ""
}

func (c *Cluster) isNewPeer(urls []string) bool {
	for _, n := range c.New {
		for _, u := range urls {
			if u == c.peerURL(n) {
				return true
			}
		}
	}
	return false
}

// ports a new control plane needs, and the process allowed to hold each
// (its own component, on a re-run).
type portOwner struct {
	port  int
	owner string // as ss prints it, cut to 15 characters by the kernel
}

func controlPlanePorts() []portOwner {
	return []portOwner{{2379, "etcd"}, {2380, "etcd"}, {6443, "kube-apiserver"}, {10257, "kube-controller"}, {10259, "kube-scheduler"}}
}

func (c *Cluster) checkPorts(ctx context.Context) []string {
	var problems []string
	check := func(nodeName string, port int, owner string) {
		out, err := c.Host(nodeName).Output(ctx, fmt.Sprintf("ss -Htlnp 'sport = :%d'", port))
		if err != nil {
			problems = append(problems, fmt.Sprintf("node %s: cannot list listening sockets: %v", nodeName, err))
			return
		}
		out = strings.TrimSpace(out)
		if out == "" || strings.Contains(out, "\""+owner) {
			return
		}
		problems = append(problems, fmt.Sprintf("node %s: port %d is in use by another program (%s); stop it or promote another node", nodeName, port, out))
	}
	for _, n := range c.New {
		for _, p := range controlPlanePorts() {
			check(n.Name, p.port, p.owner)
		}
		// A data directory is fine only when it belongs to this node's member.
		out, err := c.Host(n.Name).Output(ctx, "ls -A /var/lib/etcd 2>/dev/null || true")
		if err == nil && strings.TrimSpace(out) != "" {
			if has, _ := c.hasEtcdMember(ctx, n); !has {
				problems = append(problems, fmt.Sprintf("node %s: /var/lib/etcd is not empty but etcd has no member for %s: move it away (it may be an old cluster's data)", n.Name, n.Name))
			}
		}
	}
	for _, n := range c.LBNodes() {
		check(n, c.Opts.LBPort, "nginx")
	}
	return problems
}

func (c *Cluster) hasEtcdMember(ctx context.Context, n NodeInfo) (bool, error) {
	cli, err := c.EtcdClient(ctx)
	if err != nil {
		return false, err
	}
	members, err := etcdm.List(ctx, cli)
	if err != nil {
		return false, err
	}
	for _, m := range members {
		for _, u := range m.PeerURLs {
			if u == c.peerURL(n) {
				return true, nil
			}
		}
	}
	return false, nil
}

func (c *Cluster) checkLBSoftware(ctx context.Context) []string {
	var problems []string
	for _, n := range c.LBNodes() {
		out, err := c.Host(n).Output(ctx, "nginx -V 2>&1; ls /usr/lib/nginx/modules/ 2>/dev/null; ls /etc/nginx/modules-enabled/ 2>/dev/null")
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "not found") {
				msg = "nginx is not installed"
			}
			problems = append(problems, fmt.Sprintf("node %s: %s: install nginx with its stream module (Debian/Ubuntu: apt-get install nginx-light libnginx-mod-stream)", n, msg))
			continue
		}
		if !strings.Contains(out, "stream") {
			problems = append(problems, fmt.Sprintf("node %s: nginx has no stream module: install libnginx-mod-stream (or an nginx built --with-stream)", n))
		}
	}
	return problems
}

func names(ns []NodeInfo) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.Name)
	}
	return strings.Join(s, ",")
}
