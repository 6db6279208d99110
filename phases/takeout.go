package phases

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

// Takeout is what `haadm remove` and `haadm rollback` share: masters leave
// the control plane, in the order that never costs quorum or the API.
//
//  1. Everything that names a leaving master is pointed elsewhere first
//     (kubeconfigs, the load balancers' backends; for a rollback every
//     kubeconfig and object is pointed at the first master), so no client
//     is left talking to an apiserver about to stop.
//  2. Then, one master at a time, dead ones first: its own kubelet at the
//     shared address (it stays a worker), its label and taint off, its
//     apiserver, controller-manager and scheduler stopped, its etcd member
//     removed (checked against quorum at that moment), its etcd stopped and
//     its data, certificates and kubeconfigs moved aside (never deleted),
//     its mirror pods deleted; without KeepNode its kubelet is stopped and
//     its Node object deleted.
//  3. A rollback then stops haadm's load balancers and drops haadm's
//     /etc/hosts line.
type Takeout struct {
	// Nodes are the masters to take out; a rollback takes every master
	// but the first.
	Nodes []string
	// Rollback points everything at the first master and removes the
	// load balancer: the cluster as it was before the promote.
	Rollback bool
	// Force takes out masters SSH cannot reach: only the cluster's side
	// (etcd member, load balancers, Node object) can be cleaned up.
	Force bool
	// KeepNode leaves the Node object: the master becomes a worker.
	KeepNode bool
}

// asideDir is where a leaving master's control-plane files go: out of
// kubeadm's way (a later `kubeadm join` or haadm promote finds the node
// clean) but kept, so that nothing haadm does is lost.
const asideDir = "/var/lib/haadm/removed"

// leaving is one master being taken out, as the plan found it.
type leaving struct {
	NodeInfo
	alive    bool            // reachable over SSH
	member   *etcdm.Member   // its etcd member, if any
	files    []string        // control-plane files present on it
	manifest map[string]bool // static pods present, by file name
	dataDir  string          // etcd's data dir on it, if it holds a member
	// listening are the control-plane ports still open: a static pod
	// whose manifest an interrupted run moved may not have stopped yet.
	listening map[int]bool
	marked    bool // carries removingAnnotation: a remove began on it
}

// lbSite is a node running haadm's load balancer.
type lbSite struct {
	node     string
	engine   lb.Engine
	listen   string
	backends []string
	conf     node.File
	running  bool // the engine active or enabled
	// vip is the virtual address haadm's keepalived holds there, if any.
	vip string
}

// services are the units of haadm's load balancer on the site.
func (s lbSite) services() string {
	if s.vip != "" {
		return "keepalived " + s.engine.Service()
	}
	return s.engine.Service()
}

// DiscoverTakeout reads the cluster for a remove or a rollback. The first
// master (the source of the shared PKI, and for a rollback the master that
// stays) is --first-master, or for a rollback the oldest control plane, or
// for a remove the oldest Ready control plane that is not leaving.
func DiscoverTakeout(ctx context.Context, kube kubernetes.Interface, opts Options, t Takeout) (*Cluster, []NodeInfo, error) {
	c := &Cluster{Opts: opts, Kube: kube, Nodes: map[string]NodeInfo{}, Hosts: map[string]node.Host{}, apiPort: controlplane.DefaultAPIServerPort}
	list, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list nodes through the API: %w (check --kubeconfig: with the first master gone, point it at a surviving apiserver or the endpoint)", err)
	}
	all := controlplane.NodesOf(list.Items)
	for _, n := range all {
		c.Nodes[n.Name] = n
	}
	var out []NodeInfo
	first := opts.FirstMaster
	if t.Rollback {
		if first == "" {
			first = controlplane.InitMaster(all)
		}
	} else {
		if len(t.Nodes) == 0 {
			return nil, nil, errors.New("name the control-plane node to remove: haadm remove NODE")
		}
		if first == "" {
			first = controlplane.FirstMaster(all, t.Nodes...)
		}
	}
	if first == "" {
		return nil, nil, fmt.Errorf("no control-plane node would be left: haadm keeps at least one (name it with --first-master)")
	}
	fi, ok := c.Nodes[first]
	if !ok {
		return nil, nil, fmt.Errorf("first master %q is not a node of this cluster (nodes: %s)", first, strings.Join(keys(c.Nodes), ", "))
	}
	c.First = fi
	if t.Rollback {
		for _, n := range all {
			if n.ControlPlane && n.Name != first {
				out = append(out, n)
			}
		}
	} else {
		for _, name := range t.Nodes {
			if name == first {
				return nil, nil, fmt.Errorf("%s is the first master --first-master names: it cannot be removed in the same run", name)
			}
			n, ok := c.Nodes[name]
			if !ok {
				// Its Node object is gone already (a remove that stopped
				// half way, or a kubectl delete node): its etcd member may
				// still be there, found by name.
				n = NodeInfo{Name: name}
			}
			out = append(out, n)
		}
	}
	for _, name := range keys(c.Nodes) {
		if name != first && !slices.ContainsFunc(out, func(n NodeInfo) bool { return n.Name == name }) && !c.Nodes[name].ControlPlane {
			c.Others = append(c.Others, c.Nodes[name])
		}
	}
	if pod, err := kube.CoreV1().Pods("kube-system").Get(ctx, "kube-apiserver-"+first, metav1.GetOptions{}); err == nil {
		c.apiPort = controlplane.AdvertisedPort(pod.Annotations[controlplane.AdvertiseAnnotation])
	} else {
		c.portErr = err
	}
	if err := c.readFacts(ctx); err != nil {
		return nil, nil, err
	}
	if ep := c.Facts.ControlPlaneEndpoint; ep != "" && !t.Rollback {
		c.Opts.Endpoint = controlplane.EndpointHostPort(ep, c.APIServerPort())
		h, p, err := net.SplitHostPort(c.Opts.Endpoint)
		if err != nil {
			return nil, nil, fmt.Errorf("kubeadm-config: controlPlaneEndpoint %q: %w", ep, err)
		}
		c.EndpointHost = h
		c.EndpointPort, _ = strconv.Atoi(p)
	}
	return c, out, nil
}

// sharedURL is where workers and admin.conf point once the leaving masters
// are gone: the endpoint, or the first master itself after a rollback (or
// when the cluster never had an endpoint).
func (c *Cluster) sharedURL() string {
	if c.HasEndpoint() {
		return c.EndpointURL()
	}
	return c.LocalAPIServer(c.First)
}

// ExecuteTakeout is one run of `haadm remove` or `haadm rollback`.
func ExecuteTakeout(ctx context.Context, kube kubernetes.Interface, dial node.DialFunc, opts Options, t Takeout, log *Progress, out io.Writer) error {
	c, targets, err := DiscoverTakeout(ctx, kube, opts, t)
	if err != nil {
		return err
	}
	c.Log = log
	defer c.Close()
	want := keys(c.Nodes)
	for _, n := range targets {
		// A target without a Node object is reached by its name in the
		// ssh_config, to clean up what is left on it.
		if !slices.Contains(want, n.Name) {
			want = append(want, n.Name)
		}
	}
	t0 := time.Now()
	hosts, err := node.DialAll(ctx, want, 20*time.Second, dial)
	var ue *node.UnreachableError
	if err != nil && !errors.As(err, &ue) {
		_ = node.CloseAll(hosts)
		return err
	}
	unreachable := map[string]error{}
	if ue != nil {
		unreachable = ue.Errs
	}
	for name, h := range hosts {
		c.Hosts[name] = h
	}
	log.Step("connect", "", time.Since(t0), fmt.Sprintf("ssh to %d of %d node(s)", len(hosts), len(want)))
	return runTakeout(ctx, c, t, targets, unreachable, out)
}

func runTakeout(ctx context.Context, c *Cluster, t Takeout, targets []NodeInfo, unreachable map[string]error, out io.Writer) error {
	start := time.Now()
	what := "remove " + names(targets)
	if t.Rollback {
		what = "rollback to " + c.First.Name
	}
	t0 := time.Now()
	leave, sites, err := checkTakeout(ctx, c, t, targets, unreachable)
	if err != nil {
		return err
	}
	c.Log.Step("preflight", "", time.Since(t0), fmt.Sprintf("%s; %s stays, clients at %s", what, c.First.Name, c.sharedURL()))
	w, err := planTakeout(ctx, c, t, leave, sites)
	if err != nil {
		return fmt.Errorf("%w\n(nothing was changed)", err)
	}
	if c.Opts.DryRun {
		printPlans(out, []Phase{takeoutPhase{what}}, []*Work{w})
		return nil
	}
	if w.Empty() {
		c.Log.Step("plan", "", 0, "nothing to do: "+what+" is done")
		return leftover(c, nil)
	}
	name := "remove"
	if t.Rollback {
		name = "rollback"
	}
	apply := func() error {
		if err := w.apply(ctx, name, c.Log); err != nil {
			return fmt.Errorf("%s: %w\n(re-run the same command to resume: it picks up where it stopped)", name, err)
		}
		c.Log.Step(name, "", time.Since(start), "finished")
		return leftover(c, w.Left)
	}
	if c.Opts.SkipBackup {
		c.Log.Step("backup", "", 0, "skipped as asked (--skip-backup): no snapshot of this run")
		return apply()
	}
	rec, err := Backup(ctx, c)
	if err != nil {
		return fmt.Errorf("backup: %w\n(nothing was changed)", err)
	}
	c.Log.OnApplied(rec.Applied)
	err = apply()
	c.Log.OnApplied(nil)
	rec.Finish(err)
	if e := rec.Err(); e != nil {
		c.Log.Step("backup", "", 0, "could not record this run's changes in "+rec.Dir()+": "+e.Error())
	}
	return err
}

// takeoutPhase names the takeout's plan in a dry run's output.
type takeoutPhase struct{ what string }

func (p takeoutPhase) Name() string                                { return strings.Fields(p.what)[0] }
func (p takeoutPhase) Description() string                         { return p.what }
func (takeoutPhase) Uses() Uses                                    { return 0 }
func (takeoutPhase) Plan(context.Context, *Cluster) (*Work, error) { return &Work{}, nil }

// checkTakeout refuses, before anything changes, a takeout that would cost
// quorum or the last healthy voter, a first master that is not healthy,
// and a dead master without --force. It returns the masters in the order
// they will leave (dead or unhealthy first) and haadm's load balancers.
func checkTakeout(ctx context.Context, c *Cluster, t Takeout, targets []NodeInfo, unreachable map[string]error) ([]leaving, []lbSite, error) {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	fail := func() error {
		return fmt.Errorf("%d problem(s); nothing was changed:\n  - %s", len(problems), strings.Join(problems, "\n  - "))
	}
	if e, ok := unreachable[c.First.Name]; ok {
		add("node %s (the master that stays) is not reachable: %v; name a reachable master with --first-master", c.First.Name, e)
		return nil, nil, fail()
	}
	for name, e := range unreachable {
		if !slices.ContainsFunc(targets, func(n NodeInfo) bool { return n.Name == name }) {
			if c.Nodes[name].ControlPlane {
				add("control-plane node %s is not reachable (%v): take it out first (haadm remove %s --force), or bring it back", name, e, name)
			} else {
				c.Log.Step("connect", name, 0, "worker unreachable, left for a re-run: "+e.Error())
				if c.skipped == nil {
					c.skipped = map[string]error{}
				}
				c.skipped[name] = e
				c.Others = slices.DeleteFunc(c.Others, func(n NodeInfo) bool { return n.Name == name })
			}
		}
	}
	if !c.First.Ready {
		add("node %s (the master that stays) is not Ready: fix it first", c.First.Name)
	}
	if len(problems) > 0 {
		return nil, nil, fail()
	}
	cli, err := c.EtcdClient(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("etcd through %s: %w\n(nothing was changed)", c.First.Name, err)
	}
	members, err := etcdm.List(ctx, cli)
	if err != nil {
		return nil, nil, fmt.Errorf("etcd member list through %s: %w\n(nothing was changed)", c.First.Name, err)
	}
	health := voterHealth(ctx, cli, members)
	firstMember, ok := etcdm.FindByPeerURL(members, peerURL(c.First))
	if !ok || firstMember.IsLearner || !health[firstMember.ID] {
		add("%s's etcd member is not a healthy voter (%s): it cannot be the master that stays", c.First.Name, etcdSummary(members, health))
	}
	if ok, why, err := c.readyz(ctx, c.First.Name, controlplane.HostPort(c.First.IP, c.APIServerPort()), c.First.IP); !ok {
		add("%s's apiserver does not answer /readyz (%v%s): it cannot be the master that stays", c.First.Name, err, why)
	}

	// newLeaving is what is left of the control plane on n.
	newLeaving := func(n NodeInfo) leaving {
		l := leaving{NodeInfo: n, manifest: map[string]bool{}}
		_, l.alive = c.Hosts[n.Name]
		for _, m := range members {
			if m.Name == n.Name || n.IP != "" && slices.Contains(m.PeerURLs, peerURL(n)) {
				m := m
				l.member = &m
			}
		}
		if l.alive {
			if err := l.read(ctx, c); err != nil {
				add("%v", err)
			}
		}
		l.marked = removing(ctx, c, n.Name)
		return l
	}
	var leave []leaving
	for _, n := range targets {
		l := newLeaving(n)
		_, exists := c.Nodes[n.Name]
		switch {
		case !exists && l.member == nil:
			// Removed already, or a name that never was: either way
			// nothing of it is left to take out.
			c.Log.Step("preflight", n.Name, 0, "no node and no etcd member named "+n.Name+": nothing to remove")
			continue
		case !t.Rollback && !l.ControlPlane && !l.Tainted && l.member == nil && !l.hasFiles() && !l.marked:
			if t.KeepNode {
				c.Log.Step("preflight", n.Name, 0, n.Name+" is a worker: nothing to remove")
			} else {
				add("node %s is not a control-plane node (no label, etcd member, static pods or control-plane files): haadm remove takes masters out; a worker leaves with kubectl drain, kubectl delete node and kubeadm reset", n.Name)
			}
			continue
		case !l.alive && !t.Force:
			add("node %s is not reachable over SSH (%v): haadm can take it out of etcd, the load balancers and the API, but cannot clean up its disk. Run again with --force to do so; wipe it (kubeadm reset) before it ever comes back", n.Name, unreachable[n.Name])
		}
		leave = append(leave, l)
	}
	// A rollback also takes out what a promote stopped half way left on
	// nodes not labelled yet (an etcd member, certificates, static pods),
	// and any etcd member of no node at all.
	if t.Rollback {
		for _, o := range slices.Clone(c.Others) {
			l := newLeaving(o)
			if l.member == nil && !l.hasFiles() && !l.marked {
				continue
			}
			leave = append(leave, l)
			c.Others = slices.DeleteFunc(c.Others, func(n NodeInfo) bool { return n.Name == o.Name })
		}
		for name := range c.skipped {
			if l := newLeaving(c.Nodes[name]); l.member != nil {
				if !t.Force {
					add("node %s holds etcd member %s but is not reachable over SSH: run again with --force to remove the member anyway", name, l.member)
				}
				leave = append(leave, l)
			}
		}
		for _, m := range members {
			if m.ID == firstMember.ID || slices.ContainsFunc(leave, func(l leaving) bool { return l.member != nil && l.member.ID == m.ID }) {
				continue
			}
			m := m
			if !t.Force {
				add("etcd member %s belongs to no node of the cluster: run again with --force to remove it", m)
			}
			leave = append(leave, leaving{NodeInfo: NodeInfo{Name: "member-" + m.HexID()}, member: &m, manifest: map[string]bool{}})
		}
	}
	// Dead or unhealthy members leave first: removing a healthy voter
	// while a dead one stays is what costs quorum.
	slices.SortStableFunc(leave, func(a, b leaving) int {
		return healthRank(a, health) - healthRank(b, health)
	})
	problems = append(problems, quorumProblems(members, health, leave)...)

	sites, err := c.findLBs(ctx)
	if err != nil {
		add("%v", err)
	}
	// The virtual address must have a staying master to move to.
	for _, l := range leave {
		if t.Rollback {
			break
		}
		for _, s := range sites {
			if s.node != l.Name || s.vip == "" {
				continue
			}
			if !slices.ContainsFunc(sites, func(o lbSite) bool {
				return o.vip == s.vip && o.running && !slices.ContainsFunc(leave, func(x leaving) bool { return x.Name == o.node })
			}) {
				add("node %s holds a share of the virtual address %s and no master that stays runs haadm's keepalived and proxy for it: the address would vanish; promote another master first, or roll back", l.Name, s.vip)
			}
		}
	}
	for _, l := range leave {
		if t.Rollback || t.KeepNode {
			continue
		}
		// Its proxy is the endpoint when it listens beyond loopback and
		// no virtual address moves, whatever name the endpoint has.
		if slices.ContainsFunc(sites, func(s lbSite) bool { return s.node == l.Name && s.vip == "" && !strings.HasPrefix(s.listen, "127.") }) ||
			c.HasEndpoint() && l.IP != "" && c.EndpointHost == l.IP {
			if l.alive {
				add("node %s runs the load balancer at %s that every kubelet uses: keep it as a worker that runs it (--keep-node), or move the endpoint first", l.Name, c.Opts.Endpoint)
			} else {
				c.Log.Step("preflight", l.Name, 0, "WARNING: "+l.Name+" ran the load balancer at "+c.Opts.Endpoint+": that endpoint is down with it; point kubeconfigs at a surviving apiserver or a new load balancer")
			}
		}
	}
	if len(problems) > 0 {
		return nil, nil, fail()
	}
	return leave, sites, nil
}

// hasFiles: static pods, control-plane files, etcd data or a component
// still listening.
func (l *leaving) hasFiles() bool {
	return len(l.files) > 0 || len(l.manifest) > 0 || l.dataDir != "" || l.listening[controlplane.EtcdClientPort] || l.listening[controlplane.ControllerManagerPort] || l.listening[controlplane.SchedulerPort]
}

// removingAnnotation marks a node a remove has begun to take out, so that
// a re-run still finishes it once it looks like a worker.
const removingAnnotation = "haadm.io/removing"

func removing(ctx context.Context, c *Cluster, name string) bool {
	n, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	return err == nil && n.Annotations[removingAnnotation] != ""
}

// read finds what of the control plane is left on a reachable master.
func (l *leaving) read(ctx context.Context, c *Cluster) error {
	l.listening = map[int]bool{}
	var candidates []string
	for _, p := range staticPods() {
		candidates = append(candidates, manifestsDir+"/"+p)
	}
	candidates = append(candidates, controlPlaneFiles()...)
	var script strings.Builder
	for _, p := range candidates {
		fmt.Fprintf(&script, "[ -e %s ] && echo %s; ", node.ShellQuote(p), node.ShellQuote(p))
	}
	// The etcd manifest names the data dir; kubeadm's default otherwise.
	script.WriteString("d=$(sed -n 's/^ *- --data-dir=//p' " + manifestsDir + "/etcd.yaml 2>/dev/null | head -n1); d=${d:-/var/lib/etcd}; [ -d \"$d/member\" ] && echo \"datadir $d\"; ")
	fmt.Fprintf(&script, "ss -Hltn | awk '{print \"listen \" $4}'; true")
	out, err := c.Host(l.Name).Output(ctx, script.String())
	if err != nil {
		return fmt.Errorf("node %s: reading its control-plane files: %w", l.Name, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, "datadir "):
			l.dataDir = strings.TrimPrefix(line, "datadir ")
		case strings.HasPrefix(line, "listen "):
			if _, p := splitHostPort(strings.TrimPrefix(line, "listen ")); p > 0 {
				l.listening[p] = true
			}
		case strings.HasPrefix(line, manifestsDir+"/"):
			l.manifest[strings.TrimPrefix(line, manifestsDir+"/")] = true
		default:
			l.files = append(l.files, line)
		}
	}
	return nil
}

// controlPlaneFiles are what a master has and a worker does not, under
// /etc/kubernetes: the PKI but the cluster CA's certificate (a worker's
// kubelet trusts it), and every kubeconfig but the kubelet's.
func controlPlaneFiles() []string {
	out := []string{
		controlplane.KubernetesDir + "/" + controlplane.AdminConf,
		controlplane.KubernetesDir + "/" + controlplane.SuperAdminConf,
		controlplane.KubernetesDir + "/" + controlplane.ControllerManagerConf,
		controlplane.KubernetesDir + "/" + controlplane.SchedulerConf,
	}
	for _, f := range []string{"ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key", "front-proxy-client.crt", "front-proxy-client.key",
		"apiserver.crt", "apiserver.key", "apiserver-kubelet-client.crt", "apiserver-kubelet-client.key", "apiserver-etcd-client.crt", "apiserver-etcd-client.key", "etcd"} {
		out = append(out, pkiDir+"/"+f)
	}
	return out
}

func healthRank(l leaving, health map[uint64]bool) int {
	switch {
	case l.member == nil:
		return 0
	case !l.alive || !health[l.member.ID]:
		return 1
	}
	return 2
}

// voterHealth asks every started member for its status.
func voterHealth(ctx context.Context, cli *clientv3.Client, members []etcdm.Member) map[uint64]bool {
	var eps []string
	var ids []uint64
	for _, m := range members {
		if m.Started() && len(m.ClientURLs) > 0 {
			eps = append(eps, m.ClientURLs[0])
			ids = append(ids, m.ID)
		}
	}
	out := map[uint64]bool{}
	for i, st := range etcdm.EndpointStatuses(ctx, cli, eps) {
		out[ids[i]] = st.Healthy && st.MemberID == ids[i]
	}
	return out
}

func etcdSummary(members []etcdm.Member, health map[uint64]bool) string {
	var s []string
	for _, m := range members {
		state := "unhealthy"
		switch {
		case !m.Started():
			state = "never started"
		case health[m.ID]:
			state = "healthy"
		}
		kind := "voter"
		if m.IsLearner {
			kind = "learner"
		}
		s = append(s, fmt.Sprintf("%s %s %s", m, kind, state))
	}
	return strings.Join(s, ", ")
}

// quorumProblems walks the removals in order: before each, the voters
// left must have a healthy majority (etcd refuses a change otherwise) and
// after the last at least one healthy voter must remain.
func quorumProblems(members []etcdm.Member, health map[uint64]bool, leave []leaving) []string {
	voters := map[uint64]bool{}
	for _, m := range members {
		if !m.IsLearner {
			voters[m.ID] = true
		}
	}
	healthy := func() (h, n int) {
		for id := range voters {
			n++
			if health[id] {
				h++
			}
		}
		return h, n
	}
	for _, l := range leave {
		if l.member == nil || l.member.IsLearner {
			continue
		}
		if h, n := healthy(); h < n/2+1 {
			return []string{fmt.Sprintf("etcd has no quorum: %d of %d voters healthy (%s). No member can be removed; bring voters back, or restore from a backup (haadm restore)", h, n, etcdSummary(members, health))}
		}
		delete(voters, l.member.ID)
		if h, n := healthy(); n == 0 || h == 0 {
			return []string{fmt.Sprintf("removing %s would leave no healthy etcd voter: haadm keeps at least one", l.Name)}
		} else if h < n/2+1 {
			return []string{fmt.Sprintf("removing %s would leave %d healthy of %d etcd voters, no quorum: bring the unhealthy voters back or remove them first (%s)", l.Name, h, n, etcdSummary(members, health))}
		}
	}
	return nil
}

// findLBs reads every engine's configuration, and keepalived's, on every
// reachable node: haadm's are the load balancers whose backends may name a
// leaving master.
func (c *Cluster) findLBs(ctx context.Context) ([]lbSite, error) {
	hosts := keys(c.Hosts)
	paths := []string{lb.KeepalivedConf}
	for _, e := range lb.Engines() {
		paths = append(paths, e.ConfPath())
	}
	found := make([][]lbSite, len(hosts))
	if err := forEach(len(hosts), func(i int) error {
		have, err := c.Host(hosts[i]).ReadFiles(ctx, paths)
		if err != nil {
			return err
		}
		runs := func(svc string) bool {
			state, _ := c.Host(hosts[i]).Output(ctx, "systemctl is-active "+svc+"; systemctl is-enabled "+svc+"; true")
			return strings.HasPrefix(state, "active\n") || strings.Contains(state, "\nenabled")
		}
		// A stopped keepalived's file (a rollback leaves it) moves no
		// address.
		vip := ""
		if f, ok := have[lb.KeepalivedConf]; ok && strings.HasPrefix(string(f.Data), lb.Managed) && runs("keepalived") {
			if vip, err = lb.ParseKeepalivedVIP(f.Data); err != nil {
				return fmt.Errorf("node %s: %s: %w", hosts[i], lb.KeepalivedConf, err)
			}
		}
		for _, e := range lb.Engines() {
			f, ok := have[e.ConfPath()]
			if !ok || !strings.HasPrefix(string(f.Data), lb.Managed) {
				continue
			}
			backends, err := e.ParseBackends(f.Data)
			if err != nil {
				return fmt.Errorf("node %s: %s: %w", hosts[i], e.ConfPath(), err)
			}
			listen, err := e.ParseListen(f.Data)
			if err != nil {
				return fmt.Errorf("node %s: %s: %w", hosts[i], e.ConfPath(), err)
			}
			found[i] = append(found[i], lbSite{node: hosts[i], engine: e, listen: listen, backends: backends, conf: f, running: runs(e.Service()), vip: vip})
		}
		// A switched engine leaves the other's file behind, stopped: the
		// running one is the load balancer, whichever engine is read first.
		if slices.ContainsFunc(found[i], func(s lbSite) bool { return s.running }) {
			found[i] = slices.DeleteFunc(found[i], func(s lbSite) bool { return !s.running })
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var out []lbSite
	c.lbSites = nil
	for _, sites := range found {
		out = append(out, sites...)
		if len(sites) > 0 {
			c.lbSites = append(c.lbSites, sites[0].node)
		}
	}
	return out, nil
}

// planTakeout is the whole takeout as one ordered plan.
func planTakeout(ctx context.Context, c *Cluster, t Takeout, leave []leaving, sites []lbSite) (*Work, error) {
	w := &Work{}
	isLeaving := func(name string) bool {
		return slices.ContainsFunc(leave, func(l leaving) bool { return l.Name == name })
	}
	leavingIP := func(host string) bool {
		return slices.ContainsFunc(leave, func(l leaving) bool { return l.IP != "" && l.IP == host })
	}
	shared := c.sharedURL()
	if t.Rollback {
		steps, err := planKubeadmConfig(ctx, c, "", nil)
		if err != nil {
			return nil, err
		}
		w.add(steps...)
		if steps, err = planAPIObjects(ctx, c, "rollback", shared, shared, func(string) bool { return true }); err != nil {
			return nil, err
		}
		w.add(steps...)
	}

	// Kubeconfigs of the nodes that stay: first the masters, one at a
	// time, then the workers, several at once.
	var stay []NodeInfo
	for _, n := range c.ControlPlanes() {
		if !isLeaving(n.Name) {
			stay = append(stay, n)
		}
	}
	nStay := len(stay)
	stay = append(stay, c.Others...)
	var kcSteps []*Step
	kcSteps = make([]*Step, len(stay))
	if err := forEach(len(stay), func(i int) error {
		n := stay[i]
		master := i < nStay
		s, err := planKubeconfigs(ctx, c, n, master, func(server string) bool {
			if t.Rollback {
				return true
			}
			return leavingIP(urlHost(server))
		})
		if err != nil && !master {
			perr := err
			s = &Step{Node: n.Name, What: "kubeconfigs: cannot be planned: " + perr.Error(), Do: func(context.Context) error { return perr }}
			err = nil
		}
		if s != nil && !master {
			s.Batch, s.Optional = true, true
		}
		kcSteps[i] = s
		return err
	}); err != nil {
		return nil, err
	}
	for _, s := range kcSteps {
		if s != nil {
			w.add(*s)
		}
	}
	if !t.Rollback {
		steps, err := planAPIObjects(ctx, c, "remove", shared, "", func(server string) bool { return leavingIP(urlHost(server)) })
		if err != nil {
			return nil, err
		}
		w.add(steps...)
	}

	// A leaving master gives the virtual address up first, while its
	// apiserver still answers: keepalived moves it to one that stays.
	for _, s := range sites {
		if s.vip == "" || !isLeaving(s.node) || t.Rollback {
			continue
		}
		h := c.Host(s.node)
		// checkTakeout made sure a staying master's keepalived takes it.
		i := slices.IndexFunc(sites, func(o lbSite) bool { return o.vip == s.vip && o.running && !isLeaving(o.node) })
		if i < 0 {
			return nil, fmt.Errorf("node %s: no master that stays holds a share of %s", s.node, s.vip)
		}
		via := sites[i].node
		_, port := splitHostPort(s.listen)
		addr := controlplane.HostPort(s.vip, port)
		w.add(Step{Node: s.node, What: "keepalived stopped and disabled: virtual address " + s.vip + " moves to a master that stays",
			Details: []string{"systemctl disable --now keepalived", "then " + addr + " answers /readyz from " + via},
			Do: func(ctx context.Context) error {
				if _, err := h.Run(ctx, "systemctl disable --now keepalived >/dev/null 2>&1; systemctl stop keepalived"); err != nil {
					return err
				}
				return waitFor(ctx, c.Log, "remove", via, "virtual address "+addr+" answers /readyz", time.Minute,
					func(ctx context.Context) (bool, string, error) { return c.answersAt(ctx, via, addr) })
			}})
	}

	// The load balancers stop sending traffic to the leaving masters.
	for _, s := range sites {
		if isLeaving(s.node) && !t.KeepNode && !t.Rollback {
			continue // stopped with its node below
		}
		if step := planBackends(c, s, leavingIP); step != nil {
			w.add(*step)
		}
	}

	for _, l := range leave {
		w.add(planLeave(ctx, c, t, l, sites)...)
	}

	if t.Rollback {
		for _, s := range sites {
			if !s.running {
				continue
			}
			h := c.Host(s.node)
			// haadm's configuration stays: a later promote rewrites it,
			// and nginx without one would fail its package's next upgrade.
			cmd := "systemctl disable --now " + s.services()
			w.add(Step{Node: s.node, What: s.services() + " stopped and disabled (haadm's load balancer)", Details: []string{cmd},
				Do: func(ctx context.Context) error {
					_, err := h.Run(ctx, cmd+" >/dev/null 2>&1; systemctl stop "+s.services())
					return err
				}})
		}
		for _, n := range keys(c.Hosts) {
			if step, err := planHostsLine(ctx, c, n); err != nil {
				return nil, err
			} else if step != nil {
				w.add(*step)
			}
		}
	}
	return w, nil
}

// planKubeconfigs points node n's kubeconfigs where the control-plane
// rules want them once the leaving masters are gone, for each whose server
// pick selects. A changed kubelet.conf restarts the kubelet.
func planKubeconfigs(ctx context.Context, c *Cluster, n NodeInfo, master bool, pick func(server string) bool) (*Step, error) {
	h := c.Host(n.Name)
	if h == nil {
		return nil, nil
	}
	var paths []string
	for _, r := range controlplane.Kubeconfigs(master) {
		paths = append(paths, controlplane.KubernetesDir+"/"+r.File)
	}
	have, err := h.ReadFiles(ctx, paths)
	if err != nil {
		return nil, err
	}
	var files []node.File
	var details []string
	restart := false
	for _, r := range controlplane.Kubeconfigs(master) {
		p := controlplane.KubernetesDir + "/" + r.File
		cur, ok := have[p]
		if !ok {
			continue
		}
		server, err := certs.Server(cur.Data)
		if err != nil || !pick(server) {
			continue
		}
		want := c.sharedURL()
		if r.Target == controlplane.TargetLocal {
			want = c.LocalAPIServer(n)
		}
		out, changed, err := certs.SetServer(cur.Data, want)
		if err != nil {
			return nil, fmt.Errorf("node %s: %s: %w", n.Name, p, err)
		}
		if !changed {
			continue
		}
		files = append(files, node.File{Path: p, Data: out, Mode: modeOr(cur.Mode, 0o600), UID: cur.UID, GID: cur.GID})
		details = append(details, fileDetail(p, have, out, "repoint at "+want))
		restart = restart || r.File == controlplane.KubeletConf
	}
	if len(files) == 0 {
		return nil, nil
	}
	what := fmt.Sprintf("%d kubeconfig(s) repointed", len(files))
	if restart {
		what += ", kubelet restarted, node Ready"
		details = append(details, "systemctl restart kubelet")
	}
	return &Step{Node: n.Name, What: what, Details: details, Do: func(ctx context.Context) error {
		if err := h.WriteFiles(ctx, files); err != nil {
			return err
		}
		if !restart {
			return nil
		}
		return restartKubelet(ctx, c, n.Name)
	}}, nil
}

func restartKubelet(ctx context.Context, c *Cluster, name string) error {
	restarted := time.Now()
	if _, err := c.Host(name).Run(ctx, "systemctl restart kubelet"); err != nil {
		return err
	}
	return waitFor(ctx, c.Log, "kubelet", name, "node Ready after kubelet restart", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
		return nodeReadySince(ctx, c, name, restarted)
	})
}

// planBackends rewrites one of haadm's nginx without the leaving masters.
func planBackends(c *Cluster, s lbSite, leavingIP func(string) bool) *Step {
	var keep []lb.Backend
	dropped := 0
	for _, b := range s.backends {
		host, port := splitHostPort(b)
		if leavingIP(host) {
			dropped++
			continue
		}
		name := host
		for _, n := range c.Nodes {
			if n.IP == host {
				name = n.Name
			}
		}
		keep = append(keep, lb.Backend{Name: name, Address: host, Port: port})
	}
	if dropped == 0 {
		return nil
	}
	if len(keep) == 0 {
		err := fmt.Errorf("every backend of its %s is leaving (%s): nothing would answer at %s", s.engine, strings.Join(s.backends, ", "), s.listen)
		return &Step{Node: s.node, What: string(s.engine) + " backends", Do: func(context.Context) error { return err }}
	}
	host, port := splitHostPort(s.listen)
	cfg := lb.Config{ListenAddress: host, ListenPort: port, Backends: keep}
	if strings.HasPrefix(host, "127.") {
		cfg = lb.NodeLocal(keep)
		cfg.ListenPort = port
	}
	want, err := s.engine.Render(cfg)
	if err != nil {
		return &Step{Node: s.node, What: string(s.engine) + " backends", Do: func(context.Context) error { return err }}
	}
	h := c.Host(s.node)
	conf, svc := s.engine.ConfPath(), s.engine.Service()
	return &Step{Node: s.node, What: fmt.Sprintf("%s: %d backend(s) dropped, reloaded", s.engine, dropped),
		Details: []string{conf + "\n" + node.Diff(conf, s.conf.Data, want, true), "systemctl reload " + svc},
		Do: func(ctx context.Context) error {
			if err := writeProxy(ctx, h, s.engine, want); err != nil {
				return err
			}
			if !s.running {
				return nil // stopped on purpose: it takes the file when started
			}
			_, err := h.Run(ctx, "systemctl reload "+svc+" || systemctl restart "+svc)
			return err
		}}
}

// planLeave is one master's own way out, in order.
func planLeave(ctx context.Context, c *Cluster, t Takeout, l leaving, sites []lbSite) []Step {
	var steps []Step
	h := c.Host(l.Name)
	stamp := time.Now().UTC().Format("20060102T150405Z")
	aside := asideDir + "/" + stamp
	keepNode := t.KeepNode || t.Rollback
	_, nodeExists := c.Nodes[l.Name]

	if nodeExists && !l.marked {
		steps = append(steps, Step{Node: l.Name, What: "marked " + removingAnnotation, Details: []string{"so that a re-run finishes it once it looks like a worker"},
			Do: func(ctx context.Context) error { return annotateRemoving(ctx, c, l.Name, true) }})
	}
	if nodeExists && (l.ControlPlane || l.Tainted) {
		steps = append(steps, Step{Node: l.Name, What: "control-plane label and taint removed", Details: []string{"label " + controlplane.Label + "-, " + controlplane.ExcludeFromLBLabel + "-; taint " + controlplane.Label + ":NoSchedule-"},
			Do: func(ctx context.Context) error { return unmarkNode(ctx, c, l.Name) }})
	}
	var pods []string
	for _, p := range []string{"kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"} {
		if l.manifest[p] {
			pods = append(pods, p)
		}
	}
	ports := []int{c.APIServerPort(), controlplane.ControllerManagerPort, controlplane.SchedulerPort}
	if len(pods) > 0 || slices.ContainsFunc(ports, func(p int) bool { return l.listening[p] }) {
		steps = append(steps, Step{Node: l.Name, What: "apiserver, controller-manager, scheduler stopped", Details: []string{"static pods " + strings.Join(pods, ", ") + " moved to " + aside},
			Do: func(ctx context.Context) error { return moveAside(ctx, c.Log, h, aside, manifestsOf(pods), ports) }})
	}
	if l.member != nil {
		m := *l.member
		steps = append(steps, Step{Node: l.Name, What: "etcd member " + m.String() + " removed", Details: []string{"etcd member remove " + m.HexID()},
			Do: func(ctx context.Context) error { return removeMember(ctx, c, m) }})
	}
	if l.manifest["etcd.yaml"] || l.dataDir != "" || l.listening[controlplane.EtcdClientPort] {
		dataDir := l.dataDir
		details := []string{manifestsDir + "/etcd.yaml moved to " + aside}
		if dataDir != "" {
			details = append(details, "etcd data "+dataDir+" moved to "+aside+"/etcd-data")
		}
		steps = append(steps, Step{Node: l.Name, What: "etcd stopped, its data moved aside", Details: details,
			Do: func(ctx context.Context) error {
				if l.manifest["etcd.yaml"] || l.listening[controlplane.EtcdClientPort] {
					if err := moveAside(ctx, c.Log, h, aside, manifestsOf([]string{"etcd.yaml"}), []int{controlplane.EtcdClientPort, controlplane.EtcdPeerPort}); err != nil {
						return err
					}
				}
				if dataDir == "" {
					return nil
				}
				if _, err := h.Run(ctx, etcdGoneScript(dataDir)); err != nil {
					return err
				}
				// The data dir is often a mount of its own: its contents
				// move, the directory stays.
				_, err := h.Run(ctx, fmt.Sprintf("if [ -d %[1]s/member ]; then mkdir -p %[2]s/etcd-data && chmod 700 %[3]s %[4]s %[2]s && find %[1]s -mindepth 1 -maxdepth 1 -exec mv -t %[2]s/etcd-data {} +; fi", node.ShellQuote(dataDir), node.ShellQuote(aside), filepath.Dir(asideDir), asideDir))
				return err
			}})
	}
	if len(l.files) > 0 {
		files := slices.Clone(l.files)
		steps = append(steps, Step{Node: l.Name, What: fmt.Sprintf("%d control-plane file(s) moved aside", len(files)), Details: []string{strings.Join(files, "\n") + "\nmoved to " + aside},
			Do: func(ctx context.Context) error { return moveAside(ctx, c.Log, h, aside, files, nil) }})
	}
	// The kubelet is repointed last: a kubelet restarted a moment before
	// a static pod's manifest goes can take minutes to stop that pod.
	if l.alive && keepNode && nodeExists {
		if s, err := planKubeconfigs(ctx, c, l.NodeInfo, false, func(server string) bool { return urlHost(server) != urlHost(c.sharedURL()) }); err != nil {
			steps = append(steps, Step{Node: l.Name, What: "kubelet.conf", Do: func(context.Context) error { return err }})
		} else if s != nil {
			s.What = "kubelet.conf -> " + c.sharedURL() + ", kubelet restarted, node Ready (a worker from now on)"
			steps = append(steps, *s)
		}
	}
	if nodeExists || !l.alive {
		steps = append(steps, Step{Node: l.Name, What: "mirror pods deleted", Wait: true,
			Do: func(ctx context.Context) error { return deleteMirrorPods(ctx, c, l.Name) }})
	}
	if keepNode && nodeExists {
		steps = append(steps, Step{Node: l.Name, What: removingAnnotation + " removed: a worker now",
			Do: func(ctx context.Context) error { return annotateRemoving(ctx, c, l.Name, false) }})
	}
	if !keepNode {
		if l.alive {
			cmd := "systemctl disable --now kubelet"
			if i := slices.IndexFunc(sites, func(s lbSite) bool { return s.node == l.Name }); i >= 0 {
				cmd += "; systemctl disable --now " + sites[i].services()
			}
			steps = append(steps, Step{Node: l.Name, What: "kubelet stopped and disabled", Details: []string{cmd},
				Do: func(ctx context.Context) error {
					_, err := h.Run(ctx, cmd+" >/dev/null 2>&1; systemctl is-active -q kubelet && exit 1 || true")
					return err
				}})
		}
		if nodeExists {
			steps = append(steps, Step{Node: l.Name, What: "Node object deleted", Do: func(ctx context.Context) error {
				err := c.Kube.CoreV1().Nodes().Delete(ctx, l.Name, metav1.DeleteOptions{})
				if apierrors.IsNotFound(err) {
					return nil
				}
				return err
			}})
		}
	}
	return steps
}

func manifestsOf(files []string) []string {
	var out []string
	for _, f := range files {
		out = append(out, manifestsDir+"/"+f)
	}
	return out
}

// moveAside moves paths into dir (keeping their place under /) and waits
// until nothing listens on ports: the kubelet stops a static pod whose
// manifest is gone.
func moveAside(ctx context.Context, log *Progress, h node.Host, dir string, paths []string, ports []int) error {
	var script strings.Builder
	for _, p := range paths {
		q := node.ShellQuote(p)
		target := node.ShellQuote(dir + p)
		fmt.Fprintf(&script, "if [ -e %[1]s ]; then mkdir -p $(dirname %[2]s) && rm -rf %[2]s && mv %[1]s %[2]s; fi; ", q, target)
	}
	// Keys and kubeconfigs are in there: root's eyes only.
	fmt.Fprintf(&script, "chmod 700 %s %s %s 2>/dev/null; ", filepath.Dir(asideDir), asideDir, node.ShellQuote(dir))
	if _, err := h.Run(ctx, script.String()+"true"); err != nil {
		return err
	}
	if len(ports) == 0 {
		return nil
	}
	var filter []string
	for _, p := range ports {
		filter = append(filter, "sport = :"+strconv.Itoa(p))
	}
	cmd := "ss -Hltn '( " + strings.Join(filter, " or ") + " )'"
	return waitFor(ctx, log, "remove", h.Name(), "ports "+fmt.Sprint(ports)+" closed", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		out, err := h.Output(ctx, cmd)
		if err != nil {
			return false, "", err
		}
		if strings.TrimSpace(out) != "" {
			return false, "still listening: " + strings.Join(strings.Fields(out), " "), nil
		}
		return true, "", nil
	})
}

// removeMember removes an etcd member once the voters left are sure to keep
// quorum; a member already gone is success.
func removeMember(ctx context.Context, c *Cluster, m etcdm.Member) error {
	cli, err := c.EtcdClient(ctx)
	if err != nil {
		return err
	}
	members, err := etcdm.List(ctx, cli)
	if err != nil {
		return err
	}
	cur, ok := findByID(members, m.ID)
	if !ok {
		return nil
	}
	health := voterHealth(ctx, cli, members)
	if p := quorumProblems(members, health, []leaving{{NodeInfo: NodeInfo{Name: m.Name}, member: &cur}}); len(p) > 0 {
		return fmt.Errorf("not removing etcd member %s: %s", m, p[0])
	}
	_, err = cli.MemberRemove(ctx, m.ID)
	if err != nil && strings.Contains(err.Error(), "member not found") {
		return nil
	}
	return err
}

func findByID(members []etcdm.Member, id uint64) (etcdm.Member, bool) {
	for _, m := range members {
		if m.ID == id {
			return m, true
		}
	}
	return etcdm.Member{}, false
}

// annotateRemoving sets or clears removingAnnotation.
func annotateRemoving(ctx context.Context, c *Cluster, name string, on bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, has := n.Annotations[removingAnnotation]; has == on {
			return nil
		}
		n = n.DeepCopy()
		if on {
			if n.Annotations == nil {
				n.Annotations = map[string]string{}
			}
			n.Annotations[removingAnnotation] = time.Now().UTC().Format(time.RFC3339)
		} else {
			delete(n.Annotations, removingAnnotation)
		}
		_, err = c.Kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
}

// unmarkNode removes what Mark adds.
func unmarkNode(ctx context.Context, c *Cluster, name string) error {
	n, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	n = n.DeepCopy()
	delete(n.Labels, controlplane.Label)
	delete(n.Labels, controlplane.ExcludeFromLBLabel)
	taint := controlplane.Taint()
	n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.MatchTaint(&taint) })
	_, err = c.Kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
	return err
}

// deleteMirrorPods deletes the API's copies of a leaving master's static
// pods: a dead master's stay forever otherwise, and kubeadm reads the
// apiserver endpoints of the cluster from kube-apiserver-* pods.
func deleteMirrorPods(ctx context.Context, c *Cluster, name string) error {
	for _, p := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"} {
		// No grace: the static pod behind it is gone already.
		err := c.Kube.CoreV1().Pods("kube-system").Delete(ctx, p+"-"+name, *metav1.NewDeleteOptions(0))
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func splitHostPort(s string) (string, int) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return s, 0
	}
	p, _ := strconv.Atoi(s[i+1:])
	return strings.Trim(s[:i], "[]"), p
}

func urlHost(server string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	h, _ = splitHostPort(strings.TrimSuffix(h, "/"))
	return h
}
