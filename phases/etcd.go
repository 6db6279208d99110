package phases

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/manifests"
)

// Etcd grows etcd one member at a time, the way kubeadm joins a control
// plane now: add the member as a learner (it does not count toward quorum),
// start it from a static pod, wait until it has caught up, promote it. At no
// moment can a started-but-unhealthy voter cost quorum.
type Etcd struct{}

func (Etcd) Name() string { return "etcd" }
func (Etcd) Description() string {
	return "add each new master's etcd member as a learner, start it, promote it; one at a time"
}

// Generous bounds: kubeadm allows 40 s for the join and 2 min for promotion;
// two busy cores in the lab are slower than a real master.
const (
	etcdStartTimeout   = 4 * time.Minute
	etcdPromoteTimeout = 4 * time.Minute
)

func (Etcd) Check(ctx context.Context, c *Cluster) (bool, string, error) {
	cli, err := c.EtcdClient(ctx)
	if err != nil {
		return false, "", err
	}
	members, err := etcdm.List(ctx, cli)
	if err != nil {
		return false, "", err
	}
	var todo []string
	for _, m := range staleLearners(c, members) {
		todo = append(todo, "remove stale learner "+m.String())
	}
	for _, n := range c.New {
		m, ok := memberOf(members, c.peerURL(n))
		have, _, err := c.readFile(ctx, n.Name, manifestsDir+"/etcd.yaml")
		if err != nil {
			return false, "", err
		}
		switch {
		case !ok:
			todo = append(todo, n.Name+": no member")
		case m.IsLearner || !m.Started():
			todo = append(todo, n.Name+": learner not promoted")
		case have == nil:
			todo = append(todo, n.Name+": no etcd.yaml")
		}
	}
	return len(todo) == 0, strings.Join(todo, ", "), nil
}

func memberOf(members []etcdm.Member, peerURL string) (etcdm.Member, bool) {
	for _, m := range members {
		for _, u := range m.PeerURLs {
			if u == peerURL {
				return m, true
			}
		}
	}
	return etcdm.Member{}, false
}

// staleLearners are the learners to remove with --remove-stale-learners:
// never started, and not the member of a node being promoted.
func staleLearners(c *Cluster, members []etcdm.Member) []etcdm.Member {
	if !c.Opts.RemoveStaleLearners {
		return nil
	}
	var out []etcdm.Member
	for _, m := range members {
		if m.IsLearner && !m.Started() && !c.isNewPeer(m.PeerURLs) {
			out = append(out, m)
		}
	}
	return out
}

func (Etcd) Apply(ctx context.Context, c *Cluster) error {
	cli, err := c.EtcdClient(ctx)
	if err != nil {
		return err
	}
	members, err := etcdm.List(ctx, cli)
	if err != nil {
		return err
	}
	for _, m := range staleLearners(c, members) {
		if len(m.PeerURLs) == 0 {
			continue
		}
		if err := c.change("etcd", "", "removed stale etcd learner "+m.String(), "", func() error {
			_, err := etcdm.RemoveUnstartedLearner(ctx, cli, m.PeerURLs[0])
			return err
		}); err != nil {
			return err
		}
	}
	src, ok, err := c.readFile(ctx, c.First.Name, manifestsDir+"/etcd.yaml")
	if err != nil || !ok {
		return fmt.Errorf("node %s: read %s/etcd.yaml: %v", c.First.Name, manifestsDir, err)
	}
	for _, n := range c.New {
		if err := joinEtcd(ctx, c, n, src); err != nil {
			return err
		}
	}
	return nil
}

func joinEtcd(ctx context.Context, c *Cluster, n NodeInfo, src []byte) error {
	cli, err := c.EtcdClient(ctx)
	if err != nil {
		return err
	}
	peer := c.peerURL(n)
	members, err := etcdm.List(ctx, cli)
	if err != nil {
		return err
	}
	m, exists := memberOf(members, peer)
	if exists && !m.IsLearner && m.Started() {
		// Already a voter: make sure its manifest is there, nothing else.
		if have, _, err := c.readFile(ctx, n.Name, manifestsDir+"/etcd.yaml"); err != nil || have != nil {
			return err
		}
	}
	if !exists || m.IsLearner {
		// A member promoted a moment ago may still be settling; give etcd a
		// minute to be fully healthy before touching membership again.
		if err := c.wait(ctx, "etcd", n.Name, "every etcd voter healthy", time.Minute, func(ctx context.Context) (bool, string, error) {
			return etcdm.QuorumSafe(ctx, cli)
		}); err != nil {
			return fmt.Errorf("not adding an etcd member while etcd is unhealthy: %w", err)
		}
	}
	var initial string
	if err := c.change("etcd", n.Name, "added etcd learner "+peer, "", func() error {
		_, initial, err = etcdm.EnsureLearner(ctx, cli, n.Name, peer)
		return err
	}); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if c.Opts.DryRun {
		initial = dryRunInitialCluster(c, members, n)
	}
	want, err := manifests.Etcd(src, manifests.Node{Name: n.Name, IP: n.IP}, parseInitialCluster(initial))
	if err != nil {
		return fmt.Errorf("node %s: render etcd.yaml: %w", n.Name, err)
	}
	if _, err := c.ensureFile(ctx, "etcd", n.Name, manifestsDir+"/etcd.yaml", want, 0o600); err != nil {
		return err
	}
	if err := c.wait(ctx, "etcd", n.Name, "etcd member started", etcdStartTimeout, func(ctx context.Context) (bool, string, error) {
		ms, err := etcdm.List(ctx, cli)
		if err != nil {
			return false, "", err
		}
		m, ok := memberOf(ms, peer)
		if !ok {
			return false, "", fmt.Errorf("member %s disappeared from etcd", peer)
		}
		if !m.Started() {
			return false, "not started yet (kubelet starts the static pod)", nil
		}
		return true, "", nil
	}); err != nil {
		return fmt.Errorf("%w\n(check the etcd container on %s: crictl ps -a --name etcd; its logs under /var/log/pods/kube-system_etcd-%s_*)", err, n.Name, n.Name)
	}
	if err := c.change("etcd", n.Name, "promoted etcd learner to voter", "", func() error {
		return etcdm.Promote(ctx, cli, peer, etcdm.PromoteOptions{
			Timeout: etcdPromoteTimeout, Interval: 2 * time.Second, StatusOf: etcdm.StatusViaClient(cli),
			Progress: func(s string) { c.Log.Detail("etcd", n.Name, s) },
		})
	}); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	// New members are also endpoints: the client keeps working if the first
	// master goes away later in this run.
	if !c.Opts.DryRun {
		eps := cli.Endpoints()
		ep := "https://" + net.JoinHostPort(n.IP, "2379")
		if !slices.Contains(eps, ep) {
			cli.SetEndpoints(append(eps, ep)...)
		}
	}
	return nil
}

// dryRunInitialCluster is what EnsureLearner would return, for the plan.
func dryRunInitialCluster(c *Cluster, members []etcdm.Member, n NodeInfo) string {
	var parts []string
	for _, m := range members {
		if m.Started() && len(m.PeerURLs) > 0 && m.PeerURLs[0] != c.peerURL(n) {
			parts = append(parts, m.Name+"="+m.PeerURLs[0])
		}
	}
	return strings.Join(append(parts, n.Name+"="+c.peerURL(n)), ",")
}

func parseInitialCluster(s string) []manifests.Member {
	var ms []manifests.Member
	for _, p := range strings.Split(s, ",") {
		if name, url, ok := strings.Cut(p, "="); ok {
			ms = append(ms, manifests.Member{Name: name, PeerURL: url})
		}
	}
	return ms
}
