package phases

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/haadm/haadm/node"
)

// EtcHosts writes the endpoint's name into /etc/hosts on every node, for
// sites without DNS for it (the seed's setup did this by hand for
// kubernetes.default.svc): kubelets, kube-proxy and admins resolve the name
// once they are pointed at it, so it comes first. Only with --etc-hosts.
type EtcHosts struct{}

func (EtcHosts) Name() string { return "etc-hosts" }
func (EtcHosts) Description() string {
	return "the endpoint's name in /etc/hosts of every node (only with --etc-hosts ADDRESS)"
}
func (EtcHosts) Uses() Uses { return UsesEndpoint }

const etcHosts = "/etc/hosts"

// etcHostsMarker ends the line haadm owns, so that a later run (or a
// rollback) finds it and nothing else.
const etcHostsMarker = "# haadm: controlPlaneEndpoint"

func (EtcHosts) Reads(c *Cluster) map[string][]string {
	out := map[string][]string{}
	if c.Opts.EtcHosts == "" {
		return out
	}
	for _, n := range c.HostNames() {
		out[n] = []string{etcHosts}
	}
	return out
}

func (EtcHosts) Plan(ctx context.Context, c *Cluster) (*Work, error) {
	w := &Work{PerNode: true}
	if c.Opts.EtcHosts == "" {
		return w, nil
	}
	names := c.HostNames()
	if err := w.planNodes(len(names), func(i int) (*Step, error) {
		n := names[i]
		h := c.Host(n)
		if h == nil {
			return nil, nil // a worker left out of this run
		}
		have, err := h.ReadFiles(ctx, []string{etcHosts})
		if err != nil {
			return nil, err
		}
		cur := have[etcHosts]
		if line := otherEntry(cur.Data, c.EndpointHost); line != "" {
			return nil, fmt.Errorf("node %s: %s already names %s in %q, which would win over haadm's line: remove it, or leave --etc-hosts out if it is right", n, etcHosts, c.EndpointHost, line)
		}
		want := withHostsEntry(cur.Data, c.Opts.EtcHosts, c.EndpointHost)
		if string(want) == string(cur.Data) {
			return nil, nil
		}
		f := node.File{Path: etcHosts, Data: want, Mode: modeOr(cur.Mode, 0o644), UID: cur.UID, GID: cur.GID}
		return &Step{
			Node: n, What: fmt.Sprintf("%s: %s %s", etcHosts, c.Opts.EtcHosts, c.EndpointHost),
			Details: []string{fileDetail(etcHosts, have, want, "the endpoint's name")},
			Do:      func(ctx context.Context) error { return h.WriteFiles(ctx, []node.File{f}) },
		}, nil
	}); err != nil {
		return nil, err
	}
	return w, nil
}

// withHostsEntry is hosts with haadm's line for name set to addr, and any
// older line of haadm's dropped; the operator's own lines stay as they are.
func withHostsEntry(hosts []byte, addr, name string) []byte {
	out := withoutHostsEntry(hosts)
	if len(out) > 0 && !strings.HasSuffix(string(out), "\n") {
		out = append(out, '\n')
	}
	return append(out, addr+" "+name+" "+etcHostsMarker+"\n"...)
}

// withoutHostsEntry is hosts without haadm's line (a rollback's).
func withoutHostsEntry(hosts []byte) []byte {
	var out []string
	for _, l := range strings.SplitAfter(string(hosts), "\n") {
		if l == "" || strings.Contains(l, etcHostsMarker) {
			continue
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, ""))
}

// planHostsLine drops haadm's /etc/hosts line on node n, if it has one.
func planHostsLine(ctx context.Context, c *Cluster, n string) (*Step, error) {
	h := c.Host(n)
	have, err := h.ReadFiles(ctx, []string{etcHosts})
	if err != nil {
		return nil, err
	}
	cur, ok := have[etcHosts]
	if !ok || !strings.Contains(string(cur.Data), etcHostsMarker) {
		return nil, nil
	}
	want := withoutHostsEntry(cur.Data)
	f := node.File{Path: etcHosts, Data: want, Mode: modeOr(cur.Mode, 0o644), UID: cur.UID, GID: cur.GID}
	return &Step{Node: n, What: etcHosts + ": haadm's line removed", Details: []string{fileDetail(etcHosts, have, want, "haadm's line out")},
		Do: func(ctx context.Context) error { return h.WriteFiles(ctx, []node.File{f}) }}, nil
}

// otherEntry is a line not of haadm's that maps name, if any: resolvers
// take the first match.
func otherEntry(hosts []byte, name string) string {
	for _, l := range strings.Split(string(hosts), "\n") {
		if strings.Contains(l, etcHostsMarker) {
			continue
		}
		f := strings.Fields(strings.SplitN(l, "#", 2)[0])
		if len(f) > 1 && slices.Contains(f[1:], name) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
