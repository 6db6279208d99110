// Package controlplane is the rule book of a kubeadm control plane: which
// nodes are control planes and which of them is the first, the address
// each component listens on, where each kubeconfig must point, and how an
// apiserver is asked whether it is ready. `haadm promote` builds the
// cluster from these rules and `haadm status` judges it by them, so the two
// cannot disagree. Everything here is pure except Probe, which only reads.
package controlplane

import (
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Label marks control-plane nodes, as kubeadm does.
const Label = "node-role.kubernetes.io/control-plane"

// ExcludeFromLBLabel is the label kubeadm also puts on control planes, so
// that cloud load balancers for Services leave them out.
const ExcludeFromLBLabel = "node.kubernetes.io/exclude-from-external-load-balancers"

// Ports of a stacked-etcd control plane.
const (
	DefaultAPIServerPort  = 6443
	EtcdClientPort        = 2379
	EtcdPeerPort          = 2380
	ControllerManagerPort = 10257
	SchedulerPort         = 10259
	KubeletPort           = 10250
)

// Taint is the taint kubeadm puts on control-plane nodes.
func Taint() corev1.Taint {
	return corev1.Taint{Key: Label, Effect: corev1.TaintEffectNoSchedule}
}

// Node is what haadm needs to know of a node, read from the API.
type Node struct {
	Name           string
	IP             string // the first InternalIP
	KubeletVersion string
	ControlPlane   bool // carries Label
	Tainted        bool // carries Taint
	Ready          bool
	// NotReady is the kubelet's word for why it is not Ready (the
	// condition's reason and message), empty when Ready.
	NotReady string
	Created  time.Time
}

// NodeOf reads a Node from the API object.
func NodeOf(n corev1.Node) Node {
	out := Node{Name: n.Name, IP: InternalIP(n), KubeletVersion: n.Status.NodeInfo.KubeletVersion, Created: n.CreationTimestamp.Time}
	_, out.ControlPlane = n.Labels[Label]
	taint := Taint()
	for _, t := range n.Spec.Taints {
		if t.MatchTaint(&taint) {
			out.Tainted = true
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Ready = c.Status == corev1.ConditionTrue
			if !out.Ready {
				out.NotReady = strings.Join(slices.DeleteFunc([]string{"Ready " + string(c.Status), c.Reason, c.Message}, func(s string) bool { return s == "" }), ": ")
			}
		}
	}
	if !out.Ready && out.NotReady == "" {
		out.NotReady = "no Ready condition posted yet"
	}
	return out
}

// NodesOf reads every node of a list, sorted by name.
func NodesOf(list []corev1.Node) []Node {
	out := make([]Node, 0, len(list))
	for _, n := range list {
		out = append(out, NodeOf(n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// InternalIP is the address the kubelet registered for the node (its
// --node-ip): the address kubeadm advertises its control plane on.
func InternalIP(n corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// Marked reports whether a node carries both the label and the taint of a
// control plane.
func Marked(n Node) bool { return n.ControlPlane && n.Tainted }

// FirstMaster is the control plane kubeadm init made: it registered its
// node before anyone could join, so it is the oldest labelled node (ties,
// which only fixtures have, go by name); a Ready master comes before one
// that is not, since the first master is the source every new one is made
// from. except names nodes that do not count (those being promoted or
// removed). "" when no node is labelled.
func FirstMaster(nodes []Node, except ...string) string {
	var masters []Node
	for _, n := range nodes {
		if n.ControlPlane && !slices.Contains(except, n.Name) {
			masters = append(masters, n)
		}
	}
	if len(masters) == 0 {
		return ""
	}
	sort.SliceStable(masters, func(i, j int) bool {
		// A master that is down is no source for the others.
		if masters[i].Ready != masters[j].Ready {
			return masters[i].Ready
		}
		a, b := masters[i].Created, masters[j].Created
		return a.Before(b) || (a.Equal(b) && masters[i].Name < masters[j].Name)
	})
	return masters[0].Name
}

// InitMaster is the control plane kubeadm init made, Ready or not: the
// oldest labelled node. A rollback returns to it, and refuses when it is
// down rather than pick another.
func InitMaster(nodes []Node) string {
	var out Node
	for _, n := range nodes {
		if n.ControlPlane && (out.Name == "" || n.Created.Before(out.Created) || n.Created.Equal(out.Created) && n.Name < out.Name) {
			out = n
		}
	}
	return out.Name
}

// HostPort joins an address and a port.
func HostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// EndpointHostPort is a controlPlaneEndpoint as clients dial it: kubeadm
// gives an endpoint without a port the apiserver's bind port.
func EndpointHostPort(endpoint string, port int) string {
	if _, _, err := net.SplitHostPort(endpoint); err == nil {
		return endpoint
	}
	return HostPort(strings.Trim(endpoint, "[]"), port)
}

// APIServerURL is the URL of the apiserver a master advertises.
func APIServerURL(ip string, port int) string { return "https://" + HostPort(ip, port) }

// EtcdClientURL and EtcdPeerURL are the URLs kubeadm gives a master's etcd
// member (its advertise-client-urls and initial-advertise-peer-urls).
func EtcdClientURL(ip string) string { return "https://" + HostPort(ip, EtcdClientPort) }
func EtcdPeerURL(ip string) string   { return "https://" + HostPort(ip, EtcdPeerPort) }

// Target is what a kubeconfig's server must be.
type Target int

const (
	// TargetLocal is the node's own apiserver.
	TargetLocal Target = iota
	// TargetEndpoint is the controlPlaneEndpoint (the load balancer).
	TargetEndpoint
)

func (t Target) String() string {
	if t == TargetLocal {
		return "local apiserver"
	}
	return "endpoint"
}

// Kubeconfig files under /etc/kubernetes.
const (
	AdminConf             = "admin.conf"
	KubeletConf           = "kubelet.conf"
	ControllerManagerConf = "controller-manager.conf"
	SchedulerConf         = "scheduler.conf"
	SuperAdminConf        = "super-admin.conf"
	KubernetesDir         = "/etc/kubernetes"
	PKIDir                = "/etc/kubernetes/pki"
	ManifestsDir          = "/etc/kubernetes/manifests"
)

// KubeconfigRule says where one kubeconfig of a node must point. Also is a
// target that is accepted too (a master's kubelet at the endpoint, as
// kubeadm before 1.33 set it up); -1 when there is none.
type KubeconfigRule struct {
	File   string
	Target Target
	Also   Target
}

// Kubeconfigs are the kubeconfigs kubeadm gives a node and where each must
// point once the cluster has an endpoint:
//   - admin.conf (masters only): the endpoint, so an admin survives the
//     loss of any one master;
//   - kubelet.conf: a master's at its own apiserver (kubeadm's default since
//     1.33, kubeadm#3243; the endpoint is accepted), a worker's at the endpoint;
//   - controller-manager.conf, scheduler.conf: the local apiserver (since 1.19).
func Kubeconfigs(master bool) []KubeconfigRule {
	if !master {
		return []KubeconfigRule{{File: KubeletConf, Target: TargetEndpoint, Also: -1}}
	}
	return []KubeconfigRule{
		{File: AdminConf, Target: TargetEndpoint, Also: -1},
		{File: KubeletConf, Target: TargetLocal, Also: TargetEndpoint},
		{File: ControllerManagerConf, Target: TargetLocal, Also: -1},
		{File: SchedulerConf, Target: TargetLocal, Also: -1},
	}
}

// KubeconfigTarget is where file on a master (or a worker) must point.
func KubeconfigTarget(file string, master bool) (KubeconfigRule, bool) {
	for _, r := range Kubeconfigs(master) {
		if r.File == file {
			return r, true
		}
	}
	return KubeconfigRule{}, false
}

// AdvertiseAnnotation is set by kubeadm on the kube-apiserver static pod:
// the exact host:port the apiserver advertises (its bind port included),
// which may differ from the node's InternalIP on multi-homed machines.
const AdvertiseAnnotation = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"

// APIServerSelector finds the apiservers' mirror pods in kube-system.
const APIServerSelector = "component=kube-apiserver,tier=control-plane"

// AdvertisedPort is the port in an advertise annotation's host:port, or
// DefaultAPIServerPort when it has none.
func AdvertisedPort(endpoint string) int {
	_, p, err := net.SplitHostPort(endpoint)
	if err != nil {
		return DefaultAPIServerPort
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return DefaultAPIServerPort
	}
	return port
}
