package status

import (
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/haadm/haadm/controlplane"
)

// topology is who is who in the cluster: the facts every "want" of the
// report is computed from. It is built from the API and, when etcd has
// answered, from the etcd member list too.
type topology struct {
	// endpoint is controlPlaneEndpoint as configured; endpointHP is it
	// with kubeadm's default port added; endpointNode is the node it
	// names (by name or IP), if any.
	endpoint     string
	endpointHP   string
	endpointNode string
	// server is what clients should use; serverErr says why it is unknown.
	server      string
	serverErr   string
	firstMaster string
	// port is the apiserver's bind port: the port of every apiserver
	// without an advertise address and of an endpoint without one.
	port int
	// ip is each node's address; apiserver the host:port its apiserver
	// advertises.
	ip        map[string]string
	apiserver map[string]string
	masters   []string
	workers   []string
}

// newTopology decides the masters (labelled control-plane, running an
// apiserver pod, or an etcd member: a half-promoted node counts), their
// addresses and the server clients should use.
func newTopology(d *apiData, etcd *Etcd, connected []string, firstMaster string) *topology {
	// Every port below comes from t.port. status reads no bind port yet
	// (an apiserver's advertise annotation has its own), so it is
	// kubeadm's default; a non-default one would be set here.
	t := &topology{port: controlplane.DefaultAPIServerPort, ip: map[string]string{}, apiserver: map[string]string{}}
	isMaster := map[string]bool{}
	known := map[string]bool{}
	for _, n := range d.nodes {
		known[n.Name] = true
		if n.IP != "" {
			t.ip[n.Name] = n.IP
		}
		if n.ControlPlane {
			isMaster[n.Name] = true
		}
	}
	for name, adv := range d.advertise {
		isMaster[name] = true
		if _, _, err := net.SplitHostPort(adv); err == nil {
			t.apiserver[name] = adv
		}
	}
	if etcd != nil {
		for _, m := range etcd.Members {
			name := etcdMemberNode(m, d.nodes)
			if name == "" {
				continue
			}
			// Without the API, etcd's member names are the only list of
			// masters there is.
			if known[name] || d.nodesErr != nil {
				isMaster[name] = true
			}
			if t.ip[name] == "" {
				t.ip[name] = urlHost(firstOf(m.PeerURLs))
			}
		}
	}
	for name := range isMaster {
		if t.apiserver[name] == "" && t.ip[name] != "" {
			t.apiserver[name] = controlplane.HostPort(t.ip[name], t.port)
		}
		t.masters = append(t.masters, name)
	}
	sort.Strings(t.masters)
	for name := range known {
		if !isMaster[name] {
			t.workers = append(t.workers, name)
		}
	}
	// A connected machine that is no Node (a dedicated load balancer) has
	// no kubelet to check; without the API there is no telling, so every
	// connected node counts.
	for _, name := range connected {
		if !isMaster[name] && !known[name] && d.nodesErr != nil {
			t.workers = append(t.workers, name)
		}
	}
	sort.Strings(t.workers)
	t.workers = slices.Compact(t.workers)

	switch first := controlplane.FirstMaster(d.nodes); {
	case firstMaster != "":
		t.firstMaster = firstMaster
	case first != "":
		t.firstMaster = first
	case len(t.masters) > 0:
		// No labelled node (no API): etcd's members, by name.
		t.firstMaster = t.masters[0]
	}
	t.setServer(d)
	return t
}

func (t *topology) setServer(d *apiData) {
	switch {
	case d.cfgErr != nil:
		t.serverErr = "kubeadm-config could not be read"
		return
	case d.facts.ControlPlaneEndpoint != "":
		t.endpoint = d.facts.ControlPlaneEndpoint
		t.endpointHP = controlplane.EndpointHostPort(t.endpoint, t.port)
		t.server = "https://" + t.endpointHP
		host, _, _ := net.SplitHostPort(t.endpointHP)
		for name, ip := range t.ip {
			if strings.EqualFold(host, name) || sameIP(host, ip) {
				t.endpointNode = name
			}
		}
	case t.firstMaster == "":
		t.serverErr = "no control-plane node found"
	case t.apiserver[t.firstMaster] == "":
		t.serverErr = "no address known for the first master " + t.firstMaster
	default:
		t.server = "https://" + t.apiserver[t.firstMaster]
	}
}

// own is the URL of node's own apiserver, "" when its address is unknown.
func (t *topology) own(node string) string {
	if a := t.apiserver[node]; a != "" {
		return "https://" + a
	}
	return ""
}

func (t *topology) isMaster(node string) bool { return slices.Contains(t.masters, node) }

func (t *topology) isWorker(node string) bool { return slices.Contains(t.workers, node) }

// target says what a server URL points at, for a client on node self.
func (t *topology) target(server, self string) string {
	hp, ok := serverHostPort(server)
	if !ok {
		return TargetOther
	}
	if t.endpointHP != "" && strings.EqualFold(hp, t.endpointHP) {
		return TargetEndpoint
	}
	if strings.EqualFold(hp, t.apiserver[self]) {
		return TargetLocal
	}
	names := make([]string, 0, len(t.apiserver))
	for n := range t.apiserver {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.EqualFold(hp, t.apiserver[n]) {
			return TargetNodePrefix + n
		}
	}
	return TargetOther
}

// sansInUse are the names and addresses clients reach node's apiserver
// by: its own address and the endpoint (and, when the endpoint is a node's
// name, that node's address too, which the load balancer there listens on).
func (t *topology) sansInUse(node string) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if host, _, err := net.SplitHostPort(t.apiserver[node]); err == nil {
		add(host)
	}
	if t.endpointHP != "" {
		host, _, _ := net.SplitHostPort(t.endpointHP)
		add(host)
		if net.ParseIP(host) == nil && t.endpointNode != "" {
			add(t.ip[t.endpointNode])
		}
	}
	return out
}

// etcdMemberNode is the node an etcd member runs on: kubeadm names members
// after their node; failing that, the node whose address the peer URL has.
func etcdMemberNode(m EtcdMember, nodes []controlplane.Node) string {
	for _, n := range nodes {
		if n.Name == m.Name && m.Name != "" {
			return n.Name
		}
	}
	host := urlHost(firstOf(m.PeerURLs))
	for _, n := range nodes {
		if host != "" && sameIP(host, n.IP) {
			return n.Name
		}
	}
	return m.Name
}

// serverHostPort returns host:port of an https URL, lower-cased, with the
// default port made explicit.
func serverHostPort(server string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(server))
	if err != nil || u.Host == "" || !strings.EqualFold(u.Scheme, "https") {
		return "", false
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return strings.ToLower(net.JoinHostPort(u.Hostname(), port)), true
}

// sameServer compares two server URLs the way a client would use them.
func sameServer(a, b string) bool {
	ha, oka := serverHostPort(a)
	hb, okb := serverHostPort(b)
	return oka && okb && ha == hb
}

func urlHost(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func sameIP(a, b string) bool {
	ia, ib := net.ParseIP(a), net.ParseIP(b)
	return ia != nil && ia.Equal(ib)
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
