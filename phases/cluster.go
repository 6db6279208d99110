package phases

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/haadm/haadm/kubeadmcfg"
	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

// ControlPlaneLabel marks control-plane nodes, as kubeadm does.
const ControlPlaneLabel = "node-role.kubernetes.io/control-plane"

// Options are what the operator asked for.
type Options struct {
	// Nodes become control-plane nodes (existing, joined nodes of the cluster).
	Nodes []string
	// FirstMaster is the existing control-plane node; found from labels when empty.
	FirstMaster string
	// LBNode runs the nginx layer-4 load balancer; empty with LBMode "none".
	LBNode string
	// LBPort is the load balancer's port (not 6443: a master may host it).
	LBPort int
	// LBMode is "external" (nginx on LBNode), "node-local" (nginx on
	// 127.0.0.1 of every node, so no single LB can fail) or "none" (the
	// operator brings a load balancer that answers at Endpoint).
	LBMode string
	// Endpoint is the controlPlaneEndpoint, host:port; default LBNode's IP and LBPort.
	Endpoint string
	// CertSANs are extra names and addresses for every apiserver certificate.
	CertSANs []string
	// BackupDir on the operator's machine receives the etcd snapshot.
	BackupDir string
	// DryRun records every change instead of making it.
	DryRun bool
	// RemoveStaleLearners removes etcd learners that never started and
	// belong to no node being promoted (leftovers of a failed join), as
	// kubeadm does; started members and voters are never removed.
	RemoveStaleLearners bool
}

// NodeInfo is what haadm knows of a node from the API.
type NodeInfo struct {
	Name           string
	IP             string
	KubeletVersion string
	ControlPlane   bool
	Ready          bool
}

// Cluster is the typed state every phase shares. It is built once by
// Discover; phases read from it and act through its hosts and clients.
type Cluster struct {
	Opts   Options
	Kube   kubernetes.Interface
	Rest   *rest.Config
	Hosts  map[string]node.Host
	Nodes  map[string]NodeInfo
	First  NodeInfo
	New    []NodeInfo
	Others []NodeInfo // workers that stay workers
	Facts  kubeadmcfg.Facts
	Log    *Progress
	Plan   *Plan
	// EndpointHost and EndpointPort split Opts.Endpoint.
	EndpointHost string
	EndpointPort int

	etcd *clientv3.Client // lazily, by EtcdClient
	pki  *clusterPKI
}

// Masters returns the first master followed by the new ones: the nodes
// haadm gives certificates, static pods and kubeconfigs.
func (c *Cluster) Masters() []NodeInfo { return append([]NodeInfo{c.First}, c.New...) }

// ControlPlanes is every apiserver the load balancer must reach: the
// masters haadm works on and any the cluster already had.
func (c *Cluster) ControlPlanes() []NodeInfo {
	out := c.Masters()
	for _, name := range keys(c.Nodes) {
		n := c.Nodes[name]
		if n.ControlPlane && !slices.ContainsFunc(out, func(m NodeInfo) bool { return m.Name == name }) {
			out = append(out, n)
		}
	}
	return out
}

// Host returns the connection to a node.
func (c *Cluster) Host(name string) node.Host { return c.Hosts[name] }

// EndpointURL is the https URL of the load-balanced API.
func (c *Cluster) EndpointURL() string {
	return "https://" + net.JoinHostPort(c.EndpointHost, strconv.Itoa(c.EndpointPort))
}

// Discover reads nodes and kubeadm-config from the API. It changes nothing.
func Discover(ctx context.Context, kube kubernetes.Interface, opts Options) (*Cluster, error) {
	c := &Cluster{Opts: opts, Kube: kube, Nodes: map[string]NodeInfo{}, Hosts: map[string]node.Host{}}
	list, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes through the API: %w (check --kubeconfig)", err)
	}
	var masters []corev1.Node
	for _, n := range list.Items {
		ni := nodeInfo(n)
		c.Nodes[ni.Name] = ni
		if ni.ControlPlane && !slices.Contains(opts.Nodes, ni.Name) {
			masters = append(masters, n)
		}
	}
	first := opts.FirstMaster
	if first == "" {
		if len(masters) == 0 {
			for _, n := range opts.Nodes {
				if c.Nodes[n].ControlPlane {
					return nil, fmt.Errorf("node %q is already a control-plane node and no other is: if it is the existing control plane, leave it out of --nodes (or name it with --first-master)", n)
				}
			}
			return nil, fmt.Errorf("no node carries the %s label; name the existing control plane with --first-master", ControlPlaneLabel)
		}
		// With several masters, copy from the one kubeadm init made: it
		// registered first.
		sort.SliceStable(masters, func(i, j int) bool {
			a, b := masters[i].CreationTimestamp, masters[j].CreationTimestamp
			return a.Before(&b) || (a.Equal(&b) && masters[i].Name < masters[j].Name)
		})
		first = masters[0].Name
	}
	fi, ok := c.Nodes[first]
	if !ok {
		return nil, fmt.Errorf("first master %q is not a node of this cluster (nodes: %s)", first, strings.Join(keys(c.Nodes), ", "))
	}
	c.First = fi
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
	cm, err := kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read kube-system/kubeadm-config: %w (is this a kubeadm cluster?)", err)
	}
	cfg, err := kubeadmcfg.Parse([]byte(cm.Data[kubeadmcfg.ConfigMapKey]))
	if err != nil {
		return nil, err
	}
	c.Facts = cfg.Facts()
	if err := c.resolveEndpoint(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) resolveEndpoint() error {
	o := &c.Opts
	if o.LBMode == "" {
		o.LBMode = "external"
	}
	if o.LBPort == 0 {
		o.LBPort = 8443
		if o.LBMode == "node-local" {
			o.LBPort = lb.DefaultNodeLocalPort
		}
	}
	switch o.LBMode {
	case "external":
		if o.LBNode == "" {
			return fmt.Errorf("--lb-node is required: name the node that runs the nginx load balancer (or use --lb-mode none --endpoint HOST:PORT for a load balancer you run yourself)")
		}
		lb, ok := c.Nodes[o.LBNode]
		if !ok {
			return fmt.Errorf("--lb-node %q is not a node of this cluster", o.LBNode)
		}
		if o.Endpoint == "" {
			o.Endpoint = net.JoinHostPort(lb.IP, strconv.Itoa(o.LBPort))
		}
	case "node-local":
		if o.Endpoint == "" {
			o.Endpoint = net.JoinHostPort("localhost", strconv.Itoa(o.LBPort))
		}
	case "none":
		if o.Endpoint == "" {
			return fmt.Errorf("--lb-mode none needs --endpoint HOST:PORT, the address of your load balancer")
		}
	default:
		return fmt.Errorf("--lb-mode %q: use external, node-local or none", o.LBMode)
	}
	for _, p := range controlPlanePorts() {
		if o.LBPort == p.port || o.LBPort == 10250 {
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
	case "external":
		add(c.Opts.LBNode)
		add(c.Nodes[c.Opts.LBNode].IP)
	case "node-local":
		add("localhost")
		add("127.0.0.1")
	}
	for _, s := range c.Opts.CertSANs {
		add(s)
	}
	return names, ips
}

// LBNodes are the nodes haadm runs nginx on: the chosen one, or every node
// of the cluster in node-local mode.
func (c *Cluster) LBNodes() []string {
	switch c.Opts.LBMode {
	case "external":
		return []string{c.Opts.LBNode}
	case "node-local":
		return keys(c.Nodes)
	}
	return nil
}

func nodeInfo(n corev1.Node) NodeInfo {
	ni := NodeInfo{Name: n.Name, KubeletVersion: n.Status.NodeInfo.KubeletVersion}
	_, ni.ControlPlane = n.Labels[ControlPlaneLabel]
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && ni.IP == "" {
			ni.IP = a.Address
		}
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			ni.Ready = cond.Status == corev1.ConditionTrue
		}
	}
	return ni
}

func keys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}
