package phases

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/kubeadmcfg"
	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

// NodeInfo is what haadm knows of a node from the API.
type NodeInfo = controlplane.Node

// Options are what the operator asked for.
type Options struct {
	// Nodes become control-plane nodes (existing, joined nodes of the cluster).
	Nodes []string
	// FirstMaster is the existing control-plane node; found from labels when empty.
	FirstMaster string
	// LBMode is the load-balancer layout; empty means the one the
	// cluster's endpoint has, else lb.ModeExternal.
	LBMode lb.Mode
	// LBNode runs nginx in lb.ModeExternal mode.
	LBNode string
	// LBEngine is the proxy haadm runs; empty means lb.EngineNginx.
	LBEngine lb.Engine
	// VIP is the virtual address keepalived holds in lb.ModeVIP.
	VIP string
	// NoInstall refuses, with the command to run, instead of installing a
	// missing load-balancer package on a node.
	NoInstall bool
	// LBPort is the load balancer's port; 0 means the mode's default.
	LBPort int
	// Endpoint is the controlPlaneEndpoint, host:port; by default the LB
	// node's address (external) or localhost (node-local).
	Endpoint string
	// CertSANs are extra names and addresses for every apiserver certificate.
	CertSANs []string
	// BackupDir on the operator's machine receives the etcd snapshot.
	BackupDir string
	// SkipBackup runs the phases without the backup step first.
	SkipBackup bool
	// KeepBackups is how many of the newest backups pruning keeps besides
	// the originals; 0 means DefaultKeepBackups.
	KeepBackups int
	// Command names the haadm command in the backup's manifest
	// ("promote", "phase-certs").
	Command string
	// DryRun prints every phase's plan instead of applying it.
	DryRun bool
	// EtcHosts, when set, is the address the endpoint's host name must
	// resolve to: haadm writes it into /etc/hosts on every node, for sites
	// without DNS for that name.
	EtcHosts string
	// RemoveStaleLearners removes etcd learners that never started and
	// belong to no node being promoted (leftovers of a failed join), as
	// kubeadm does; started members and voters are never removed.
	RemoveStaleLearners bool
}

// Cluster is the typed state every phase shares. It is built once by
// Discover; phases read from it and act through its hosts and clients.
type Cluster struct {
	Opts   Options
	Kube   kubernetes.Interface
	Hosts  map[string]node.Host
	Nodes  map[string]NodeInfo
	First  NodeInfo
	New    []NodeInfo
	Others []NodeInfo // workers that stay workers
	Facts  kubeadmcfg.Facts
	Log    *Progress
	// EndpointHost and EndpointPort split Opts.Endpoint; both are empty
	// when the phases being run need no endpoint (see Phase.Uses).
	EndpointHost string
	EndpointPort int

	etcd    etcdOnce                // the run's etcd client, by EtcdClient
	facts   map[string]nodeFacts    // what preflight read on each node
	cached  map[string]*node.Cached // hosts that can prefetch, by name
	hostSet hostSetOnce             // the first master's host files, by hostFiles
	// apiPort is the port the apiservers listen on, as kubeadm advertises
	// it on the first master's apiserver pod (its bindPort).
	apiPort int
	// portErr says why apiPort is the default: preflight compares it with
	// the first master's manifest.
	portErr error
	// needsImages: the run starts static pods (etcd or control-plane is
	// in it), so preflight checks and pulls their images.
	needsImages bool
	// apiserversFollow: the run goes on to start the new masters'
	// apiservers (control-plane is in it), whose start waits for their
	// node's etcd member; the etcd phase need not wait for the last one.
	apiserversFollow bool
	// toPull are the images preflight found missing, by node.
	toPull map[string][]string
	// toInstall are the load-balancer packages preflight found missing.
	toInstall map[string][]string
	mu        sync.Mutex
	// skipped are workers left out of this run (unreachable), with why.
	skipped map[string]error
	// prefetched is closed when the run's prefetch has finished.
	prefetched <-chan struct{}
	// keys makes the plans' new private keys, ahead of need once the
	// prefetch has said how many (keysAhead); nil makes each when asked.
	keys    *certs.KeyPool
	srcOnce sourceOnce // the first master's files, by sourceFiles
	// lbSites are the nodes found running haadm's nginx, for a remove or
	// a rollback, which read the layout from the nodes instead of flags.
	lbSites []string
	// lbNote says which load balancer layout haadm chose for the
	// operator, when no flag named it.
	lbNote string
}

// Masters returns the first master followed by the new ones: the nodes
// haadm gives certificates, static pods and kubeconfigs.
func (c *Cluster) Masters() []NodeInfo { return append([]NodeInfo{c.First}, c.New...) }

// ControlPlanes is every apiserver the load balancer must reach: the
// masters haadm works on and any the cluster already had.
//
// The first master comes first, the others by name: what is rendered from
// this list (backends, keepalived priorities) must not change with the
// order of --nodes, or a second promote would find work.
func (c *Cluster) ControlPlanes() []NodeInfo {
	out := c.Masters()
	for _, name := range keys(c.Nodes) {
		n := c.Nodes[name]
		if n.ControlPlane && !slices.ContainsFunc(out, func(m NodeInfo) bool { return m.Name == name }) {
			out = append(out, n)
		}
	}
	slices.SortStableFunc(out[1:], func(a, b NodeInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// isNew reports whether name is one of the nodes being promoted.
func (c *Cluster) isNew(name string) bool {
	return slices.ContainsFunc(c.New, func(n NodeInfo) bool { return n.Name == name })
}

// Host returns the connection to a node.
func (c *Cluster) Host(name string) node.Host { return c.Hosts[name] }

// HasEndpoint reports whether an endpoint was resolved for this run.
func (c *Cluster) HasEndpoint() bool { return c.EndpointHost != "" }

// EndpointURL is the https URL of the load-balanced API.
func (c *Cluster) EndpointURL() string {
	return "https://" + controlplane.HostPort(c.EndpointHost, c.EndpointPort)
}

// APIServerPort is the port every apiserver of this cluster listens on.
func (c *Cluster) APIServerPort() int { return c.apiPort }

// LocalAPIServer is the URL of node n's own apiserver.
func (c *Cluster) LocalAPIServer(n NodeInfo) string {
	return controlplane.APIServerURL(n.IP, c.APIServerPort())
}

// Discover reads nodes and kubeadm-config from the API. It changes nothing.
// withEndpoint resolves the load-balancer options into an endpoint; the
// phases that do not use it (etcd, mark) run without those flags.
func Discover(ctx context.Context, kube kubernetes.Interface, opts Options, withEndpoint bool) (*Cluster, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{Opts: opts, Kube: kube, Nodes: map[string]NodeInfo{}, Hosts: map[string]node.Host{}, apiPort: controlplane.DefaultAPIServerPort}
	list, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes through the API: %w (check --kubeconfig)", err)
	}
	all := controlplane.NodesOf(list.Items)
	for _, n := range all {
		c.Nodes[n.Name] = n
	}
	first := opts.FirstMaster
	if first == "" {
		if first = controlplane.FirstMaster(all, opts.Nodes...); first == "" {
			for _, n := range opts.Nodes {
				if c.Nodes[n].ControlPlane {
					return nil, fmt.Errorf("node %q is already a control-plane node and no other is: if it is the existing control plane, leave it out of --nodes (or name it with --first-master)", n)
				}
			}
			return nil, fmt.Errorf("no node carries the %s label; name the existing control plane with --first-master", controlplane.Label)
		}
	}
	fi, ok := c.Nodes[first]
	if !ok {
		return nil, fmt.Errorf("first master %q is not a node of this cluster (nodes: %s)", first, strings.Join(keys(c.Nodes), ", "))
	}
	c.First = fi
	// The bind port is not in kubeadm-config; kubeadm itself reads it back
	// from this annotation.
	if pod, err := kube.CoreV1().Pods("kube-system").Get(ctx, "kube-apiserver-"+first, metav1.GetOptions{}); err == nil {
		c.apiPort = controlplane.AdvertisedPort(pod.Annotations[controlplane.AdvertiseAnnotation])
	} else {
		c.portErr = err
	}
	for _, n := range opts.Nodes {
		ni, ok := c.Nodes[n]
		if !ok {
			return nil, fmt.Errorf("node %q is not a node of this cluster (nodes: %s); join it as a worker first (kubeadm join)", n, strings.Join(keys(c.Nodes), ", "))
		}
		if n == first {
			return nil, fmt.Errorf("node %q is the existing control plane; --nodes names the nodes to promote", n)
		}
		c.New = append(c.New, ni)
	}
	for _, name := range keys(c.Nodes) {
		if name != first && !slices.Contains(opts.Nodes, name) && !c.Nodes[name].ControlPlane {
			c.Others = append(c.Others, c.Nodes[name])
		}
	}
	if err := c.readFacts(ctx); err != nil {
		return nil, err
	}
	if withEndpoint {
		if err := c.resolveEndpoint(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// readFacts reads kubeadm's ClusterConfiguration.
func (c *Cluster) readFacts(ctx context.Context) error {
	cm, err := c.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read kube-system/kubeadm-config: %w (is this a kubeadm cluster?)", err)
	}
	cfg, err := kubeadmcfg.Parse([]byte(cm.Data[kubeadmcfg.ConfigMapKey]))
	if err != nil {
		return err
	}
	c.Facts = cfg.Facts()
	return nil
}

func (c *Cluster) resolveEndpoint() error {
	o := &c.Opts
	if err := c.keepLayout(); err != nil {
		return err
	}
	if o.LBPort == 0 {
		o.LBPort = o.LBMode.DefaultPort()
	}
	switch o.LBMode {
	case lb.ModeExternal:
		if o.LBNode == "" {
			o.LBNode = c.defaultLBNode()
			if o.LBNode == "" && c.Facts.ControlPlaneEndpoint != "" {
				return fmt.Errorf("the cluster's endpoint is %s, no node's address: --lb-mode external would move it to one node; name it with --lb-node, or keep the layout (--lb-mode vip --vip ADDRESS, or --lb-mode none --endpoint %s)", c.Facts.ControlPlaneEndpoint, c.Facts.ControlPlaneEndpoint)
			}
			if o.LBNode == "" {
				return fmt.Errorf("--lb-node is required: name the node that runs the load balancer (or --lb-mode vip --vip ADDRESS, node-local, or none --endpoint HOST:PORT for a load balancer you run yourself)")
			}
			c.lbNote = fmt.Sprintf("load balancer: %s on %s (%s; --lb-node to choose another). It is one machine: for no single point of failure use --lb-mode vip --vip ADDRESS (keepalived moves one address between the masters) or --lb-mode node-local",
				o.engine(), o.LBNode, c.lbNodeWhy(o.LBNode))
		}
		n, ok := c.Nodes[o.LBNode]
		if !ok {
			return fmt.Errorf("--lb-node %q is not a node of this cluster", o.LBNode)
		}
		if o.Endpoint == "" {
			o.Endpoint = controlplane.HostPort(n.IP, o.LBPort)
		}
	case lb.ModeNodeLocal:
		if o.Endpoint == "" {
			o.Endpoint = controlplane.HostPort("localhost", o.LBPort)
		}
	case lb.ModeVIP:
		if o.VIP == "" {
			return fmt.Errorf("--lb-mode vip needs --vip ADDRESS: a free address on the masters' subnet for keepalived to move between them")
		}
		if o.Endpoint == "" {
			o.Endpoint = controlplane.HostPort(o.VIP, o.LBPort)
		}
	case lb.ModeNone:
		if o.Endpoint == "" {
			return fmt.Errorf("--lb-mode none needs --endpoint HOST:PORT, the address of your load balancer")
		}
	default:
		_, err := lb.ParseMode(string(o.LBMode))
		return err
	}
	if o.LBNode != "" && o.LBMode != lb.ModeExternal {
		c.lbNote = fmt.Sprintf("WARNING: --lb-node %s is ignored with --lb-mode %s, which chooses where the proxies run", o.LBNode, o.LBMode)
	}
	for _, p := range controlPlanePorts(c.APIServerPort()) {
		if o.LBPort == p.port || o.LBPort == controlplane.KubeletPort {
			return fmt.Errorf("--lb-port %d is a port the control plane or the kubelet uses on a master; choose another (default 8443, 6444 node-local)", o.LBPort)
		}
	}
	h, p, err := net.SplitHostPort(o.Endpoint)
	if err != nil {
		return fmt.Errorf("--endpoint %q: want HOST:PORT: %w", o.Endpoint, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return fmt.Errorf("--endpoint %q: bad port", o.Endpoint)
	}
	c.EndpointHost, c.EndpointPort = h, port
	return nil
}

// defaultLBNode is the seed's layout: the node that already is the
// endpoint (a later promote of more masters keeps the same load balancer),
// else, for a cluster without an endpoint, the first of --nodes.
func (c *Cluster) defaultLBNode() string {
	if h, _, err := net.SplitHostPort(c.Facts.ControlPlaneEndpoint); err == nil {
		for _, name := range keys(c.Nodes) {
			if n := c.Nodes[name]; n.Name == h || n.IP == h {
				return name
			}
		}
		return ""
	}
	if len(c.Opts.Nodes) > 0 {
		return c.Opts.Nodes[0]
	}
	return ""
}

// keepLayout chooses the layout when no --lb-mode names one: the one the
// cluster's endpoint has (a later promote must not move every kubelet to
// another load balancer), else external. An endpoint that is no node's
// address and not localhost says nothing certain: it is named.
func (c *Cluster) keepLayout() error {
	o := &c.Opts
	if o.LBMode != "" {
		return nil
	}
	o.LBMode = lb.ModeExternal
	h, p, err := net.SplitHostPort(c.Facts.ControlPlaneEndpoint)
	if err != nil {
		return nil // no endpoint yet
	}
	port, _ := strconv.Atoi(p)
	switch {
	case h == "localhost" || h == "127.0.0.1":
		o.LBMode = lb.ModeNodeLocal
	case c.defaultLBNode() != "":
	default:
		return fmt.Errorf("the cluster's endpoint %s is no node's address: say which layout serves it, --lb-mode vip --vip ADDRESS (keepalived), --lb-mode none --endpoint %s (your own load balancer) or --lb-mode external --lb-node NODE (moving it)", c.Facts.ControlPlaneEndpoint, c.Facts.ControlPlaneEndpoint)
	}
	if o.LBPort == 0 {
		o.LBPort = port
	}
	return nil
}

func (c *Cluster) lbNodeWhy(n string) string {
	if len(c.Opts.Nodes) > 0 && c.Opts.Nodes[0] == n {
		return "the first of --nodes"
	}
	return "the cluster's controlPlaneEndpoint " + c.Facts.ControlPlaneEndpoint
}

// engine is the proxy haadm runs, nginx unless chosen.
func (o Options) engine() lb.Engine {
	if o.LBEngine == "" {
		return lb.EngineNginx
	}
	return o.LBEngine
}

// LBSANs are the names and addresses clients use for the load balancer; every
// apiserver certificate must carry them.
func (c *Cluster) LBSANs() (names []string, ips []net.IP) {
	add := func(s string) {
		if s == "" {
			return
		}
		if ip := net.ParseIP(s); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if !slices.Contains(names, s) {
			names = append(names, s)
		}
	}
	add(c.EndpointHost)
	switch c.Opts.LBMode {
	case lb.ModeExternal:
		add(c.Opts.LBNode)
		add(c.Nodes[c.Opts.LBNode].IP)
	case lb.ModeNodeLocal:
		add("localhost")
		add("127.0.0.1")
	case lb.ModeVIP:
		// Clients may use the address whatever name the endpoint has.
		add(c.Opts.VIP)
	}
	for _, s := range c.Opts.CertSANs {
		add(s)
	}
	return names, ips
}

// LBNodes are the nodes haadm runs nginx on: the chosen one, or every node
// of the cluster in node-local mode.
func (c *Cluster) LBNodes() []string {
	if c.lbSites != nil {
		return c.lbSites
	}
	if !c.HasEndpoint() {
		return nil
	}
	switch c.Opts.LBMode {
	case lb.ModeExternal:
		return []string{c.Opts.LBNode}
	case lb.ModeVIP:
		// keepalived moves the address between the masters only.
		var out []string
		for _, m := range c.ControlPlanes() {
			out = append(out, m.Name)
		}
		return out
	case lb.ModeNodeLocal:
		// Every node but a worker left out of this run (unreachable).
		return slices.DeleteFunc(keys(c.Nodes), func(n string) bool { _, skip := c.skipped[n]; return skip })
	}
	return nil
}

// lbAddr is where the load balancer listens, as seen from a node using it.
func (c *Cluster) lbAddr() string {
	switch c.Opts.LBMode {
	case lb.ModeExternal:
		return controlplane.HostPort(c.Nodes[c.Opts.LBNode].IP, c.Opts.LBPort)
	case lb.ModeNodeLocal:
		return controlplane.HostPort("127.0.0.1", c.Opts.LBPort)
	case lb.ModeVIP:
		return controlplane.HostPort(c.Opts.VIP, c.Opts.LBPort)
	}
	return c.Opts.Endpoint
}

// proxyAddrOn is where node n's own proxy listens, as seen from n: in the
// vip mode each master's proxy answers before the address is there.
func (c *Cluster) proxyAddrOn(n string) string {
	if c.Opts.LBMode == lb.ModeVIP {
		return controlplane.HostPort(c.Nodes[n].IP, c.Opts.LBPort)
	}
	return c.lbAddr()
}

// HostNames are the nodes a run needs SSH to: every master, every worker
// (its kubelet may be repointed), every LB node.
func (c *Cluster) HostNames() []string {
	var want []string
	for _, n := range c.ControlPlanes() {
		want = append(want, n.Name)
	}
	for _, n := range c.Others {
		want = append(want, n.Name)
	}
	for _, n := range c.LBNodes() {
		if !slices.Contains(want, n) {
			want = append(want, n)
		}
	}
	return want
}

func keys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

func names(ns []NodeInfo) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.Name)
	}
	return strings.Join(s, ",")
}
