package status

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/haadm/haadm/controlplane"
)

// MinMasters is the smallest control plane that survives losing a master:
// etcd needs a majority of its voters, and of 2 voters that is both.
const MinMasters = 3

// Judge decides the verdict from the report's rows alone and gives one
// reason per problem. It is pure: Collect calls it, and so can anyone who
// edits or merges reports.
//
//   - ha: no reason at all.
//   - single-master: one control-plane node, one etcd member and no
//     controlPlaneEndpoint; the reasons say what HA still lacks.
//   - degraded: anything else.
func Judge(r *Report) (Verdict, []string) {
	masters := reportMasters(r)
	var why []string
	add := func(format string, args ...any) { why = append(why, fmt.Sprintf(format, args...)) }

	if !r.API.Reachable {
		add("kubernetes API: %s", orUnknown(r.API.Error))
	}
	if r.API.KubeadmConfigError != "" {
		add("kubeadm-config: %s", r.API.KubeadmConfigError)
	}
	for _, u := range r.Unreachable {
		add("node %s: not inspected (%s)", u.Node, u.Error)
	}
	why = append(why, etcdReasons(r.Etcd)...)
	why = append(why, apiserverReasons(r)...)
	for _, k := range r.Kubeconfigs {
		if !k.OK {
			why = append(why, kubeconfigReason(k))
		}
	}
	for _, c := range r.ConfigMaps {
		if !c.OK {
			why = append(why, configMapReason(c))
		}
	}
	why = append(why, nodeReasons(r, masters)...)
	why = append(why, lbReasons(r)...)
	if r.API.KubeadmConfigError == "" && r.Endpoint == "" {
		add("no controlPlaneEndpoint in kubeadm-config: clients can only use the first master")
	}
	switch n := len(masters); {
	case n == 0:
		add("no control-plane node found, HA needs at least %d", MinMasters)
	case n < MinMasters:
		add("%d control-plane node(s) (%s), HA needs at least %d", n, strings.Join(masters, ", "), MinMasters)
	}

	switch {
	case len(why) == 0:
		return VerdictHA, []string{}
	case len(masters) == 1 && len(r.Etcd.Members) == 1 && r.Endpoint == "" &&
		r.API.Reachable && r.API.KubeadmConfigError == "" && r.Etcd.Error == "":
		return VerdictSingleMaster, why
	}
	return VerdictDegraded, why
}

// reportMasters are the control-plane nodes as the report shows them:
// labelled ones, those with an apiserver row, and etcd members by name.
func reportMasters(r *Report) []string {
	var out []string
	add := func(n string) {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, n := range r.Nodes {
		if n.ControlPlane {
			add(n.Name)
		}
	}
	for _, a := range r.APIServers {
		add(a.Node)
	}
	for _, m := range r.Etcd.Members {
		add(m.Name)
	}
	sort.Strings(out)
	return out
}

func etcdReasons(e Etcd) []string {
	var why []string
	if e.Error != "" {
		return []string{"etcd: " + e.Error}
	}
	voters, leader := 0, false
	for _, m := range e.Members {
		name := m.Name
		if name == "" {
			name = m.ID
		}
		switch {
		case !m.Started:
			why = append(why, fmt.Sprintf("etcd member %s: added but not started", name))
			continue
		case m.Learner:
			why = append(why, fmt.Sprintf("etcd member %s: still a learner, not a voting member", name))
		default:
			voters++
		}
		leader = leader || m.Leader
		if !m.Healthy {
			why = append(why, fmt.Sprintf("etcd member %s: unhealthy (%s)", name, orUnknown(m.Error)))
		}
	}
	if !leader && len(e.Members) > 0 {
		why = append(why, "etcd: no member reports a leader")
	}
	switch {
	case voters == 2:
		why = append(why, fmt.Sprintf("etcd: 2 voting members, HA needs at least %d (with 2, losing either stops etcd)", MinMasters))
	case voters < MinMasters:
		why = append(why, fmt.Sprintf("etcd: %d voting member(s), HA needs at least %d", voters, MinMasters))
	}
	return why
}

func apiserverReasons(r *Report) []string {
	var why []string
	ready := 0
	now, _ := time.Parse(time.RFC3339, r.Timing.Started)
	for _, a := range r.APIServers {
		if a.Ready {
			ready++
		} else {
			why = append(why, fmt.Sprintf("apiserver on %s (%s): not ready (%s)", a.Node, orUnknown(a.Address), orUnknown(a.Error)))
		}
		if len(a.SANsMissing) > 0 {
			why = append(why, fmt.Sprintf("apiserver certificate on %s: does not cover %s", a.Node, strings.Join(a.SANsMissing, ", ")))
		}
		if exp, err := time.Parse(time.RFC3339, a.CertExpires); err == nil && !now.IsZero() && !now.Before(exp) {
			why = append(why, fmt.Sprintf("apiserver certificate on %s: expired %s", a.Node, a.CertExpires))
		}
	}
	if ready < MinMasters {
		why = append(why, fmt.Sprintf("%d apiserver(s) ready, HA needs at least %d", ready, MinMasters))
	}
	return why
}

func kubeconfigReason(k Kubeconfig) string {
	if k.Error != "" {
		return fmt.Sprintf("%s on %s: %s", k.File, k.Node, k.Error)
	}
	return fmt.Sprintf("%s on %s points at %s, want %s", k.File, k.Node, orUnknown(k.Server),
		strings.Join(append([]string{k.Want}, k.Alternatives...), " or "))
}

func configMapReason(c ConfigMap) string {
	if c.Error != "" {
		return fmt.Sprintf("ConfigMap %s (%s): %s", c.Name, c.Key, c.Error)
	}
	return fmt.Sprintf("ConfigMap %s (%s) points at %s, want %s", c.Name, c.Key, orUnknown(c.Server), c.Want)
}

func nodeReasons(r *Report, masters []string) []string {
	var why []string
	for _, n := range r.Nodes {
		if !slices.Contains(masters, n.Name) {
			continue
		}
		if !n.ControlPlane {
			why = append(why, fmt.Sprintf("node %s: runs control-plane components but lacks the label %s", n.Name, controlplane.Label))
		}
		if !n.Tainted {
			why = append(why, fmt.Sprintf("node %s: control-plane node without the taint %s:%s", n.Name, controlplane.Label, controlplane.Taint().Effect))
		}
		if !n.Ready {
			why = append(why, fmt.Sprintf("node %s: control-plane node is not Ready", n.Name))
		}
	}
	return why
}

func lbReasons(r *Report) []string {
	var why []string
	if node, ok := endpointApiserver(r); ok {
		why = append(why, fmt.Sprintf("controlPlaneEndpoint %s is the apiserver of %s, not a load balancer: every client still depends on that one master", r.Endpoint, node))
	}
	for _, lb := range r.LoadBalancers {
		name := "load balancer on " + lb.Node
		if lb.Node == "" {
			name = "load balancer " + r.Endpoint
		}
		switch {
		case lb.Error != "" && !lb.Ready:
			why = append(why, fmt.Sprintf("%s (%s): not ready (%s)", name, orUnknown(lb.Address), lb.Error))
		case lb.Error != "":
			why = append(why, fmt.Sprintf("%s: %s", name, lb.Error))
		case !lb.Ready:
			why = append(why, fmt.Sprintf("%s (%s): not ready", name, orUnknown(lb.Address)))
		}
		for _, b := range lb.Backends {
			if !b.Up {
				why = append(why, fmt.Sprintf("%s: backend %s down (%s)", name, b.Address, orUnknown(b.Error)))
			}
		}
		if len(lb.Backends) == 0 {
			continue
		}
		for _, a := range r.APIServers {
			if !hasBackend(lb.Backends, a) {
				why = append(why, fmt.Sprintf("%s: apiserver %s (%s) is not a backend", name, a.Node, orUnknown(strings.TrimPrefix(a.Address, "https://"))))
			}
		}
	}
	return why
}

// endpointApiserver tells whether the endpoint is some master's apiserver
// address rather than a load balancer in front of all of them.
func endpointApiserver(r *Report) (node string, ok bool) {
	if r.Endpoint == "" {
		return "", false
	}
	// Server is https://Endpoint with the port clients use: the one place
	// the report says which port that is.
	for _, a := range r.APIServers {
		if a.Address != "" && sameServer(a.Address, r.Server) {
			return a.Node, true
		}
	}
	return "", false
}

// hasBackend tells whether a load balancer forwards to an apiserver: by
// address, or by the node's name (or a domain name starting with it).
func hasBackend(backends []Backend, a APIServer) bool {
	hp, ok := serverHostPort(a.Address)
	if !ok {
		return true // nothing to compare; its own reason says why
	}
	host, port, _ := net.SplitHostPort(hp)
	node := strings.ToLower(a.Node)
	for _, b := range backends {
		bh, bp, err := net.SplitHostPort(strings.ToLower(b.Address))
		if err != nil || bp != port {
			continue
		}
		if bh == host || sameIP(bh, host) || bh == node || strings.HasPrefix(bh, node+".") {
			return true
		}
	}
	return false
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
