package phases

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/manifests"
	"github.com/haadm/haadm/node"
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
func (Etcd) Uses() Uses { return UsesEtcd }

// DependsOn: the members use the certificates the certs phase writes.
func (Etcd) DependsOn() []string { return []string{"certs"} }

// Generous bounds: kubeadm allows 40 s for the join and 2 min for promotion;
// two busy cores in the lab are slower than a real master.
const (
	etcdStartTimeout   = 4 * time.Minute
	etcdPromoteTimeout = 4 * time.Minute
	// etcdPollInterval paces the promotion's attempts and its confirmation:
	// a learner catches up and a member applies its promotion in well under
	// a second once it can, so a slower pace is time lost at each member.
	etcdPollInterval = 250 * time.Millisecond
)

// etcdCerts are what a member's static pod reads; a learner whose pod
// cannot start would be a stale member, so they are checked before adding it.
func etcdCerts() []string {
	return []string{"etcd/ca.crt", "etcd/server.crt", "etcd/server.key", "etcd/peer.crt", "etcd/peer.key", "etcd/healthcheck-client.crt", "etcd/healthcheck-client.key"}
}

// Reads are the new masters' etcd manifests.
func (Etcd) Reads(c *Cluster) map[string][]string {
	out := map[string][]string{}
	for _, n := range c.New {
		out[n.Name] = []string{manifestsDir + "/etcd.yaml"}
	}
	return out
}

func (Etcd) Plan(ctx context.Context, c *Cluster) (*Work, error) {
	cli, err := c.EtcdClient(ctx)
	if err != nil {
		return nil, err
	}
	members, err := etcdm.List(ctx, cli)
	if err != nil {
		return nil, err
	}
	src, err := c.sourceFiles(ctx)
	if err != nil {
		return nil, err
	}
	w := &Work{}
	for _, m := range staleLearners(c, members) {
		if len(m.PeerURLs) == 0 {
			continue
		}
		peer := m.PeerURLs[0]
		w.add(Step{What: "remove stale etcd learner " + m.String(), Do: func(ctx context.Context) error {
			_, err := etcdm.RemoveUnstartedLearner(ctx, cli, peer)
			return err
		}})
	}
	manifestsOn := make([]map[string]node.File, len(c.New))
	if err := forEach(len(c.New), func(i int) error {
		var err error
		manifestsOn[i], err = c.Host(c.New[i].Name).ReadFiles(ctx, []string{manifestsDir + "/etcd.yaml"})
		return err
	}); err != nil {
		return nil, err
	}
	// What --initial-cluster will be, for the plan's diff: every started
	// member, plus the new nodes joined before this one.
	predicted := startedMembers(members)
	type join struct {
		i         int
		predicted []manifests.Member
		voter     bool
	}
	var joins []join
	// After the last promotion no learner is added: a member is at most
	// restarted (a voter whose etcd.yaml was lost), which needs no quorum
	// check of etcd's. Its node's apiserver, started in control-plane,
	// waits for the member while it starts.
	lastPromotion := -1
	for i, n := range c.New {
		m, isMember := etcdm.FindByPeerURL(members, peerURL(n))
		_, hasManifest := manifestsOn[i][manifestsDir+"/etcd.yaml"]
		voter := isMember && !m.IsLearner && m.Started()
		if !isMember || !m.Started() {
			predicted = append(predicted, manifests.Member{Name: n.Name, PeerURL: peerURL(n)})
		}
		if voter && hasManifest {
			continue
		}
		if !voter {
			lastPromotion = len(joins)
		}
		joins = append(joins, join{i, slices.Clone(predicted), voter})
	}
	for k, j := range joins {
		confirm := k != lastPromotion || !c.apiserversFollow
		w.add(joinSteps(c, c.New[j.i], src.pods["etcd.yaml"], manifestsOn[j.i], j.predicted, j.voter, confirm)...)
	}
	return w, nil
}

// joinSteps are one node's join: learner, static pod, started, promoted.
// confirm waits, after the promotion, for the member itself to serve as a
// voter (etcd's first publish after a snapshot can take it 7 s): what
// comes next must find it so, a membership change or clients pointed at
// it. Without confirm the member is not added to haadm's etcd client.
func joinSteps(c *Cluster, n NodeInfo, src []byte, have map[string]node.File, predicted []manifests.Member, voter, confirm bool) []Step {
	peer := peerURL(n)
	path := manifestsDir + "/etcd.yaml"
	var initial []manifests.Member
	planned, planErr := manifests.Etcd(src, manifests.Node{Name: n.Name, IP: n.IP}, predicted)
	old, exists := have[path]
	detail := path + "\n" + node.Diff(path, old.Data, planned, exists)
	if planErr != nil {
		detail = path + ": " + planErr.Error()
	} else if exists && bytes.Equal(old.Data, planned) {
		// A join that stopped half way wrote it already.
		detail = path + ": already as planned, left alone"
	}
	steps := []Step{{
		Node: n.Name, What: "etcd learner " + peer,
		Details: []string{"member add --learner " + peer + " (or reuse the member a stopped run added)"},
		Do: func(ctx context.Context) error {
			cli, err := c.EtcdClient(ctx)
			if err != nil {
				return err
			}
			if err := c.checkEtcdCerts(ctx, n); err != nil {
				return err
			}
			if err := c.checkHostFiles(ctx, n.Name); err != nil {
				return err
			}
			if !voter {
				// A member promoted a moment ago may still be settling;
				// give etcd a minute to be fully healthy before touching
				// membership again.
				if err := waitFor(ctx, c.Log, "etcd", n.Name, "every etcd voter healthy", time.Minute, func(ctx context.Context) (bool, string, error) {
					return etcdm.QuorumSafe(ctx, cli)
				}); err != nil {
					return fmt.Errorf("not adding an etcd member while etcd is unhealthy: %w", err)
				}
			}
			_, s, err := etcdm.EnsureLearner(ctx, cli, n.Name, peer)
			initial = parseInitialCluster(s)
			return err
		},
	}, {
		Node: n.Name, What: "etcd.yaml", Details: []string{detail, "systemctl restart kubelet, if the node had no " + manifestsDir + " (its kubelet would look for it only every 20 s)"},
		Do: func(ctx context.Context) error {
			out, err := manifests.Etcd(src, manifests.Node{Name: n.Name, IP: n.IP}, initial)
			if err != nil {
				return fmt.Errorf("render etcd.yaml: %w", err)
			}
			if exists && bytes.Equal(old.Data, out) {
				return nil // rewriting it would only make the kubelet look again
			}
			h := c.Host(n.Name)
			// A worker has no static-pod directory, and its kubelet, which
			// found none, looks again only every 20 s: the learner would
			// start up to 20 s late (13 s in the lab). Restarted, it
			// watches the directory at once, as after kubeadm join.
			absent, err := h.Output(ctx, "[ -d "+manifestsDir+" ] || echo absent")
			if err != nil {
				return err
			}
			if err := h.WriteFiles(ctx, []node.File{{Path: path, Data: out, Mode: 0o600}}); err != nil {
				return err
			}
			if strings.TrimSpace(absent) == "absent" {
				c.Log.Detail("etcd", n.Name, "the kubelet had no "+manifestsDir+" to watch: systemctl restart kubelet")
				if _, err := h.Run(ctx, "systemctl restart kubelet"); err != nil {
					return fmt.Errorf("restarting the kubelet to start etcd: %w", err)
				}
			}
			return nil
		},
	}, {
		Node: n.Name, What: "etcd member started", Wait: true,
		Do: func(ctx context.Context) error {
			cli, err := c.EtcdClient(ctx)
			if err != nil {
				return err
			}
			err = waitFor(ctx, c.Log, "etcd", n.Name, "etcd member started", etcdStartTimeout, func(ctx context.Context) (bool, string, error) {
				ms, err := etcdm.List(ctx, cli)
				if err != nil {
					return false, "", err
				}
				m, ok := etcdm.FindByPeerURL(ms, peer)
				if !ok {
					return false, "", fmt.Errorf("member %s disappeared from etcd", peer)
				}
				if !m.Started() {
					return false, "not started yet (kubelet starts the static pod)", nil
				}
				return true, "", nil
			})
			if err != nil {
				return fmt.Errorf("%w\n(check the etcd container on %s: crictl ps -a --name etcd; its logs under /var/log/pods/kube-system_etcd-%s_*)", err, n.Name, n.Name)
			}
			return nil
		},
	}}
	if voter {
		// A voter restarted: its apiserver may start now.
		steps[len(steps)-1].Gate = true
		return steps
	}
	promoteOpts := func(cli *clientv3.Client, unconfirmed bool) etcdm.PromoteOptions {
		return etcdm.PromoteOptions{
			Timeout: etcdPromoteTimeout, Interval: etcdPollInterval, StatusOf: etcdm.StatusViaClient(cli),
			Unconfirmed: unconfirmed,
			Progress:    func(s string) { c.Log.Detail("etcd", n.Name, s) },
		}
	}
	// The Gate: once a voter, the member is what its node's apiserver
	// needs, and control-plane starts there while the confirmation (up to
	// 7 s, see above) and the next node's join go on.
	promoted := Step{
		Node: n.Name, What: "etcd learner promoted to voter", Gate: true,
		Do: func(ctx context.Context) error {
			cli, err := c.EtcdClient(ctx)
			if err != nil {
				return err
			}
			return etcdm.Promote(ctx, cli, peer, promoteOpts(cli, true))
		},
	}
	if !confirm {
		promoted.Details = []string{"the last promotion: its kube-apiserver's start (control-plane) waits for the member to serve"}
		return append(steps, promoted)
	}
	serves := Step{
		Node: n.Name, What: "etcd member serves as a voter", Wait: true,
		Do: func(ctx context.Context) error {
			cli, err := c.EtcdClient(ctx)
			if err != nil {
				return err
			}
			// Promote again: the member is a voter, so this only asks the
			// member itself until it says so.
			if err := etcdm.Promote(ctx, cli, peer, promoteOpts(cli, false)); err != nil {
				return err
			}
			// New members are also endpoints: the client keeps working if
			// the first master goes away later in this run. An unconfirmed
			// one is not: it may refuse requests a while yet, and the
			// members promoted before it already reach etcd without the
			// first master (with one new member alone, nothing does).
			// Promote only reports a confirmation that timed out, so ask once
			// more before making the member an endpoint.
			ep := controlplane.EtcdClientURL(n.IP)
			if slices.Contains(cli.Endpoints(), ep) {
				return nil
			}
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if st, err := cli.Status(sctx, ep); err != nil || st.IsLearner {
				c.Log.Detail("etcd", n.Name, fmt.Sprintf("%s not used as an etcd endpoint: it does not answer as a voter yet (%v)", ep, err))
				return nil
			}
			cli.SetEndpoints(append(cli.Endpoints(), ep)...)
			return nil
		},
	}
	return append(steps, promoted, serves)
}

// checkEtcdCerts refuses to add a member whose static pod could not start.
func (c *Cluster) checkEtcdCerts(ctx context.Context, n NodeInfo) error {
	var paths []string
	for _, f := range etcdCerts() {
		paths = append(paths, pkiDir+"/"+f)
	}
	have, err := c.Host(n.Name).ReadFiles(ctx, paths)
	if err != nil {
		return err
	}
	var missing []string
	for _, p := range paths {
		if _, ok := have[p]; !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s missing: run `haadm phase certs` first (no etcd member was added)", strings.Join(missing, ", "))
	}
	return nil
}

func peerURL(n NodeInfo) string { return controlplane.EtcdPeerURL(n.IP) }

func startedMembers(members []etcdm.Member) []manifests.Member {
	var out []manifests.Member
	for _, m := range members {
		if m.Started() && len(m.PeerURLs) > 0 {
			out = append(out, manifests.Member{Name: m.Name, PeerURL: m.PeerURLs[0]})
		}
	}
	return out
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

func (c *Cluster) isNewPeer(urls []string) bool {
	for _, n := range c.New {
		if slices.Contains(urls, peerURL(n)) {
			return true
		}
	}
	return false
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
