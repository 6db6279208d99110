package phases

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/version"

	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/manifests"
	"github.com/haadm/haadm/node"
)

// Supported Kubernetes minors: kubeadm's learner-based etcd join and the
// manifest layout haadm edits are the same across these.
const (
	minMinor = 31
	maxMinor = 36
	// minProven is the oldest minor the lab's end-to-end tests promote.
	minProven = 35
)

// minFreeDisk is what a new master needs free under /var/lib: etcd's data
// and the control plane's images.
const minFreeDisk = 1 << 30

// Preflight refuses bad input before anything changes: unknown or
// unreachable nodes, mismatched versions, an unhealthy etcd, stale members,
// busy ports, missing load-balancer software. It is the first step of every
// run, not a phase: nothing may be skipped past it.
func Preflight(ctx context.Context, c *Cluster) error {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	v, err := version.ParseGeneric(c.Facts.KubernetesVersion)
	if err != nil {
		add("kubeadm-config: kubernetesVersion %q does not parse: %v", c.Facts.KubernetesVersion, err)
	} else if v.Major() != 1 || v.Minor() < minMinor || v.Minor() > maxMinor {
		add("cluster runs Kubernetes %s; haadm supports v1.%d to v1.%d", c.Facts.KubernetesVersion, minMinor, maxMinor)
	} else if v.Minor() < minProven {
		c.Log.Step("preflight", "", 0, fmt.Sprintf("WARNING: Kubernetes %s is accepted but not proven by haadm's end-to-end tests (v1.%d and v1.%d are)", c.Facts.KubernetesVersion, minProven, maxMinor))
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
			// A node kubeadm has just joined is not Ready for some
			// seconds: say what the kubelet says.
			add("node %s is not Ready (%s): wait for it to be, or fix it, before promoting it", n.Name, n.NotReady)
		}
		if n.IP == "" {
			add("node %s has no InternalIP address in its status", n.Name)
		}
	}
	// Every node at once, each in one round trip.
	t0 := time.Now()
	hosts := keys(c.Hosts)
	facts := make([]nodeFacts, len(hosts))
	errs := make([]error, len(hosts))
	_ = forEach(len(hosts), func(i int) error {
		facts[i], errs[i] = probeNode(ctx, c, hosts[i])
		return nil
	})
	c.facts = map[string]nodeFacts{}
	for i, name := range hosts {
		if errs[i] != nil {
			add("node %s: %v", name, errs[i])
			continue
		}
		c.facts[name] = facts[i]
		problems = append(problems, c.judgeNode(name, facts[i])...)
	}
	// The shared material the certs phase copies, and the identity haadm
	// uses for etcd: read by the prefetch, when there is one.
	if c.prefetched != nil {
		select {
		case <-c.prefetched:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if _, err := c.sourceFiles(ctx); err != nil {
		add("%v", err)
	}
	c.Log.Detail("preflight", "", fmt.Sprintf("nodes probed in %s", time.Since(t0).Round(time.Millisecond)))
	if len(problems) == 0 {
		problems = append(problems, c.checkNodes(ctx)...)
	}
	if len(problems) == 0 {
		problems = append(problems, c.checkVIP(ctx)...)
	}
	if len(problems) == 0 {
		problems = append(problems, c.checkEtcd(ctx, func(name string) string {
			i := slices.Index(hosts, name)
			if i < 0 {
				return ""
			}
			return facts[i].etcdData
		})...)
	}
	if len(problems) == 0 {
		problems = append(problems, c.pullMissing(ctx)...)
	}
	if len(problems) == 0 {
		problems = append(problems, c.installMissing(ctx)...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("preflight found %d problem(s); nothing was changed:\n  - %s", len(problems), strings.Join(problems, "\n  - "))
	}
	return nil
}

// nodeFacts is what preflight reads on a node.
type nodeFacts struct {
	addrs    string         // ip -o addr show
	listen   map[int]string // port -> the listening process, as ss prints it
	etcdData string         // what /var/lib/etcd holds, by name ("" empty)
	// The load balancer's programs and files there (lbSoftwareScript).
	lbSoftware
	// proxyActive, keepalivedActive: what systemctl says.
	proxyActive, keepalivedActive bool
	freeDisk                      int64  // bytes free under /var/lib; 0 when unknown
	resolved                      string // what the endpoint's host name resolves to; "" when it does not
}

// resolveScript asks a node what the endpoint's host name resolves to;
// an address needs no resolving and localhost always resolves.
func resolveScript(c *Cluster) string {
	h := c.EndpointHost
	if h == "" || net.ParseIP(h) != nil || h == "localhost" {
		return "echo -"
	}
	return "getent ahosts " + node.ShellQuote(h) + " | awk 'NR==1 {print $1}'"
}

// probeNode reads everything preflight needs from one node in one command.
func probeNode(ctx context.Context, c *Cluster, name string) (nodeFacts, error) {
	const sep = "\n--haadm--\n"
	script := strings.Join([]string{
		"ip -o addr show",
		"ss -Htlnp",
		"ls -A /var/lib/etcd 2>/dev/null || true",
		lbSoftwareScript(c),
		"systemctl is-active " + c.Opts.engine().Service() + " 2>/dev/null; systemctl is-active keepalived 2>/dev/null; true",
		"df -Pk /var/lib | awk 'NR==2 {print $4}'",
		resolveScript(c),
	}, "; printf '"+strings.ReplaceAll(sep, "\n", `\n`)+"'; ")
	out, err := c.Host(name).Output(ctx, script)
	if err != nil {
		return nodeFacts{}, err
	}
	parts := strings.Split(out, sep)
	if len(parts) != 7 {
		return nodeFacts{}, fmt.Errorf("unexpected preflight output (%d sections): %q", len(parts), out)
	}
	f := nodeFacts{addrs: parts[0], listen: parseListeners(parts[1]), etcdData: strings.Join(strings.Fields(parts[2]), " "), resolved: strings.TrimSpace(parts[6])}
	if kb, err := strconv.ParseInt(strings.TrimSpace(parts[5]), 10, 64); err == nil {
		f.freeDisk = kb << 10
	}
	f.lbSoftware = parseLBSoftware(parts[3])
	active := strings.Fields(parts[4])
	f.proxyActive = len(active) > 0 && active[0] == "active"
	f.keepalivedActive = len(active) > 1 && active[1] == "active"
	return f, nil
}

// parseListeners reads `ss -Htlnp`: the local address is the 4th field,
// the process (users:(("etcd",pid=..))) the last.
func parseListeners(out string) map[int]string {
	m := map[int]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		i := strings.LastIndex(f[3], ":")
		port, err := strconv.Atoi(f[3][i+1:])
		if i < 0 || err != nil {
			continue
		}
		proc := ""
		if len(f) > 5 {
			proc = f[len(f)-1]
		}
		m[port] = proc
	}
	return m
}

func (c *Cluster) judgeNode(name string, f nodeFacts) []string {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	// SSH must land on the node the API calls by that name, or haadm
	// would write one node's certificates onto another.
	if ip := c.Nodes[name].IP; ip != "" && !strings.Contains(f.addrs, " "+ip+"/") {
		add("node %s: ssh reaches a machine without the node's address %s: check the ssh config entry for %s", name, ip, name)
	}
	busy := func(port int, owners ...string) {
		proc, ok := f.listen[port]
		if !ok || slices.ContainsFunc(owners, func(o string) bool { return strings.Contains(proc, "\""+o) }) {
			return
		}
		add("node %s: port %d is in use by another program (%s); stop it or promote another node", name, port, proc)
	}
	if slices.ContainsFunc(c.New, func(n NodeInfo) bool { return n.Name == name }) {
		for _, p := range controlPlanePorts(c.APIServerPort()) {
			busy(p.port, p.owner)
		}
		if f.freeDisk > 0 && f.freeDisk < minFreeDisk {
			add("node %s: only %d MiB free under /var/lib, a control plane needs at least %d MiB for etcd and images: free some space", name, f.freeDisk>>20, minFreeDisk>>20)
		}
	}
	if slices.Contains(c.LBNodes(), name) {
		// haadm's other engine gives the port up to this one (planProxy).
		busy(c.Opts.LBPort, append([]string{c.Opts.engine().Service()}, f.managed...)...)
		problems = append(problems, c.judgeLBSoftware(name, f)...)
	}
	// Everything on the node that will use the endpoint's name (kubelet,
	// kube-proxy, admin.conf) must resolve it, unless haadm writes it.
	if c.Opts.EtcHosts == "" && f.resolved == "" && resolveScript(c) != "echo -" {
		add("node %s: the endpoint's name %s does not resolve there: add it to DNS, or let haadm write /etc/hosts on every node with --etc-hosts ADDRESS", name, c.EndpointHost)
	}
	return problems
}

// checkEtcd: etcd healthy, no stale members, and no new master holding
// etcd data of another cluster (hasData says what each node holds).
func (c *Cluster) checkEtcd(ctx context.Context, hasData func(node string) string) []string {
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
	for _, n := range c.New {
		// A data directory is fine only when it belongs to this node's member.
		if _, member := etcdm.FindByPeerURL(members, peerURL(n)); hasData(n.Name) != "" && !member {
			problems = append(problems, fmt.Sprintf("node %s: /var/lib/etcd is not empty (%s) but etcd has no member for %s: move it away (it may be an old cluster's data)", n.Name, hasData(n.Name), n.Name))
		}
	}
	var known []string
	for _, m := range c.ControlPlanes() {
		known = append(known, peerURL(m))
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

// ports a new control plane needs, and the process allowed to hold each
// (its own component, on a re-run).
type portOwner struct {
	port  int
	owner string // as ss prints it, cut to 15 characters by the kernel
}

func controlPlanePorts(apiserver int) []portOwner {
	return []portOwner{
		{controlplane.EtcdClientPort, "etcd"}, {controlplane.EtcdPeerPort, "etcd"}, {apiserver, "kube-apiserver"},
		{controlplane.ControllerManagerPort, "kube-controller"}, {controlplane.SchedulerPort, "kube-scheduler"},
	}
}

// checkNodes runs, in one command per node, what needs the first
// master's files: on every new master, whether the images its static pods
// need are there (kubeadm join pulls them in its preflight too: a slow or
// failing pull must not happen while etcd has a member that is not running
// yet); on every LB node, whether nginx takes the configuration haadm will
// write, from a temporary path (a missing stream module shows now, not
// after etcd has grown; `nginx -V` says --with-stream=dynamic on Debian with
// or without the module). Missing images are pulled then, one node at a time.
func (c *Cluster) checkNodes(ctx context.Context) []string {
	src, err := c.sourceFiles(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	var images []string
	var problems0 []string
	for _, f := range staticPods() {
		pod, err := manifests.Decode(src.pods[f])
		if err != nil {
			return []string{fmt.Sprintf("node %s: %s: %v", c.First.Name, f, err)}
		}
		if p, ok := manifests.Flag(pod, "secure-port"); ok && f == "kube-apiserver.yaml" && p != strconv.Itoa(c.APIServerPort()) {
			problems0 = append(problems0, fmt.Sprintf("node %s: kube-apiserver.yaml says --secure-port=%s, but haadm found port %d (%v): check the kube-apiserver-%s pod's %s annotation", c.First.Name, p, c.APIServerPort(), c.portErr, c.First.Name, controlplane.AdvertiseAnnotation))
		}
		for _, ctr := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
			if !slices.Contains(images, ctr.Image) {
				images = append(images, ctr.Image)
			}
		}
	}
	// crictl where the node has it (any CRI), else containerd's ctr.
	var imageCheck []string
	for _, img := range images {
		q := node.ShellQuote(img)
		imageCheck = append(imageCheck, "if crictl inspecti -q "+q+" >/dev/null 2>&1 || ctr -n k8s.io images ls -q name=="+q+" 2>/dev/null | grep -q .; then :; else echo missing "+q+"; fi")
	}
	lbNodes := c.LBNodes()
	lbCheck, err := lbConfigCheckScript(c)
	if err != nil {
		return []string{err.Error()}
	}
	hosts := keys(c.Hosts)
	problems := make([][]string, len(hosts))
	c.toPull = map[string][]string{}
	_ = forEach(len(hosts), func(i int) error {
		n := hosts[i]
		var script []string
		if c.isNew(n) && c.needsImages {
			script = append(script, imageCheck...)
		}
		// A node that lacks the engine is checked once it is installed.
		if slices.Contains(lbNodes, n) && len(c.facts[n].missing) == 0 {
			script = append(script, lbCheck)
		}
		if len(script) == 0 {
			return nil
		}
		out, err := c.Host(n).Output(ctx, strings.Join(script, "\n"))
		if err != nil {
			problems[i] = append(problems[i], fmt.Sprintf("node %s: %v", n, err))
			return nil
		}
		var missing []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if img, ok := strings.CutPrefix(line, "missing "); ok {
				missing = append(missing, img)
			}
		}
		if why := lbRefused(c, out); why != "" {
			problems[i] = append(problems[i], fmt.Sprintf("node %s: %s", n, why))
		}
		if len(missing) > 0 {
			c.mu.Lock()
			c.toPull[n] = missing
			c.mu.Unlock()
		}
		return nil
	})
	return slices.Concat(problems0, slices.Concat(problems...))
}

// pullMissing fetches, once every check has passed, the images checkNodes
// found missing, one node at a time: the only change preflight makes, as
// kubeadm join's preflight pulls too.
func (c *Cluster) pullMissing(ctx context.Context) []string {
	var problems []string
	for _, n := range keys(c.toPull) {
		problems = append(problems, c.pull(ctx, n, c.toPull[n])...)
	}
	return problems
}

// pull fetches missing images on a new master, or says in a dry run that
// it would.
func (c *Cluster) pull(ctx context.Context, n string, missing []string) []string {
	if len(missing) == 0 {
		return nil
	}
	if c.Opts.DryRun {
		c.Log.Step("preflight", n, 0, "would pull "+strings.Join(missing, ", "))
		return nil
	}
	var problems []string
	t0 := time.Now()
	for _, img := range missing {
		q := node.ShellQuote(img)
		if _, err := c.Host(n).Run(ctx, "crictl pull "+q+" >/dev/null 2>&1 || ctr -n k8s.io images pull "+q); err != nil {
			problems = append(problems, fmt.Sprintf("node %s: image %s is not there and cannot be pulled (%v): load it (ctr -n k8s.io images import) or give the node access to its registry", n, img, err))
		}
	}
	if len(problems) == 0 {
		c.Log.Step("preflight", n, time.Since(t0), "pulled "+strings.Join(missing, ", "))
	}
	return problems
}
