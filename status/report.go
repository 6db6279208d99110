package status

// SchemaVersion is bumped whenever a field of Report changes meaning or is
// removed; adding a field does not bump it. Scripts should check it.
const SchemaVersion = 1

// Verdict is the one-word summary of a Report.
type Verdict string

const (
	// VerdictHA: every check passed; the control plane survives the loss of
	// any one master.
	VerdictHA Verdict = "ha"
	// VerdictDegraded: anything else that is not a plain single master: a
	// half-finished promotion, a dead member, a stale kubeconfig, or a
	// cluster haadm could not fully inspect.
	VerdictDegraded Verdict = "degraded"
	// VerdictSingleMaster: one control-plane node, one etcd member and no
	// controlPlaneEndpoint: the state haadm starts from.
	VerdictSingleMaster Verdict = "single-master"
)

// Report is the result of `haadm status`. Its JSON and YAML forms use the
// json names below (sigs.k8s.io/yaml goes through JSON); lists are never
// null, and fields marked omitempty are left out when empty.
type Report struct {
	SchemaVersion int     `json:"schemaVersion" yaml:"schemaVersion"`
	Verdict       Verdict `json:"verdict" yaml:"verdict"`
	// Reasons name every problem, one per line, each naming the node and
	// the component; for single-master they say what HA still needs.
	Reasons []string `json:"reasons" yaml:"reasons"`
	// Endpoint is controlPlaneEndpoint from kubeadm-config, "" when unset.
	Endpoint string `json:"endpoint" yaml:"endpoint"`
	// Server is the URL every client should use: https://Endpoint, or the
	// first master's apiserver when there is no endpoint; "" when unknown.
	Server string `json:"server" yaml:"server"`
	// FirstMaster is the node Server points at when there is no endpoint.
	FirstMaster string `json:"firstMaster,omitempty" yaml:"firstMaster,omitempty"`
	API         API    `json:"api" yaml:"api"`
	// Unreachable lists the nodes haadm could not log in to; nothing on
	// them (files, load balancer) was checked.
	Unreachable []NodeError  `json:"unreachable" yaml:"unreachable"`
	Etcd        Etcd         `json:"etcd" yaml:"etcd"`
	APIServers  []APIServer  `json:"apiservers" yaml:"apiservers"`
	Kubeconfigs []Kubeconfig `json:"kubeconfigs" yaml:"kubeconfigs"`
	ConfigMaps  []ConfigMap  `json:"configMaps" yaml:"configMaps"`
	Leases      []Lease      `json:"leases" yaml:"leases"`
	// Lock is the haadm lock when a run holds it (or held it and was
	// killed); left out when the cluster is not locked.
	Lock          *Lock          `json:"lock,omitempty" yaml:"lock,omitempty"`
	Nodes         []Node         `json:"nodes" yaml:"nodes"`
	LoadBalancers []LoadBalancer `json:"loadBalancers" yaml:"loadBalancers"`
	Timing        Timing         `json:"timing" yaml:"timing"`
}

// API says whether the Kubernetes API could be read. Without it haadm
// still reports what it saw over SSH and etcd, and exits with ExitNoAPI.
type API struct {
	Reachable bool `json:"reachable" yaml:"reachable"`
	// Error is why the nodes could not be listed.
	Error string `json:"error,omitempty" yaml:"error,omitempty"`
	// KubeadmConfigError is why kube-system/kubeadm-config could not be
	// read; Endpoint is then unknown rather than unset.
	KubeadmConfigError string `json:"kubeadmConfigError,omitempty" yaml:"kubeadmConfigError,omitempty"`
}

// NodeError is a node that could not be inspected.
type NodeError struct {
	Node  string `json:"node" yaml:"node"`
	Error string `json:"error" yaml:"error"`
}

// Etcd is the etcd cluster as its members report it.
type Etcd struct {
	// Error is set when no member could be listed at all.
	Error   string       `json:"error,omitempty" yaml:"error,omitempty"`
	Members []EtcdMember `json:"members" yaml:"members"`
}

// EtcdMember is one member of the etcd cluster and its own status.
type EtcdMember struct {
	// Name is the node name for members kubeadm or haadm added; "" for a
	// member that was added but never started.
	Name string `json:"name" yaml:"name"`
	// ID is the member ID in hex, as etcdctl prints it.
	ID         string   `json:"id" yaml:"id"`
	PeerURLs   []string `json:"peerURLs" yaml:"peerURLs"`
	ClientURLs []string `json:"clientURLs" yaml:"clientURLs"`
	Learner    bool     `json:"learner" yaml:"learner"`
	// Started is false for a member that was added but has not joined yet.
	Started bool `json:"started" yaml:"started"`
	Leader  bool `json:"leader" yaml:"leader"`
	// Version, RaftIndex, RaftTerm and DBSize come from the member's own
	// status endpoint; zero when it did not answer.
	Version   string `json:"version,omitempty" yaml:"version,omitempty"`
	RaftIndex uint64 `json:"raftIndex" yaml:"raftIndex"`
	RaftTerm  uint64 `json:"raftTerm" yaml:"raftTerm"`
	DBSize    int64  `json:"dbSize" yaml:"dbSize"`
	// Healthy: the member answered its status, knows a leader and
	// reports no alarm or error.
	Healthy bool   `json:"healthy" yaml:"healthy"`
	Error   string `json:"error,omitempty" yaml:"error,omitempty"`
}

// APIServer is one control-plane node's kube-apiserver, probed on the
// address it advertises.
type APIServer struct {
	Node string `json:"node" yaml:"node"`
	// Address is the URL probed, https://IP:6443.
	Address string `json:"address" yaml:"address"`
	// Via is the node whose connection carried the probe (the node itself
	// unless it was unreachable over SSH).
	Via string `json:"via,omitempty" yaml:"via,omitempty"`
	// Ready is GET /readyz answering 200.
	Ready   bool   `json:"ready" yaml:"ready"`
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
	// CertSANs are the serving certificate's SANs ("DNS:x", "IP:y"),
	// sorted; CertExpires is its notAfter, RFC 3339 in UTC.
	CertSANs    []string `json:"certSANs" yaml:"certSANs"`
	CertExpires string   `json:"certExpires,omitempty" yaml:"certExpires,omitempty"`
	// SANsMissing are addresses in use that the certificate does not
	// cover: the node's IP and the endpoint's name or IP.
	SANsMissing []string `json:"sansMissing" yaml:"sansMissing"`
	Error       string   `json:"error,omitempty" yaml:"error,omitempty"`
}

// Kubeconfig is the server of one kubeconfig file under /etc/kubernetes.
type Kubeconfig struct {
	Node string `json:"node" yaml:"node"`
	// File is admin.conf, kubelet.conf, controller-manager.conf or
	// scheduler.conf (only kubelet.conf on workers).
	File   string `json:"file" yaml:"file"`
	Server string `json:"server" yaml:"server"`
	// Want is the preferred server; Alternatives are also correct (a
	// master's kubelet.conf may name the endpoint instead of its own
	// apiserver).
	Want         string   `json:"want" yaml:"want"`
	Alternatives []string `json:"alternatives,omitempty" yaml:"alternatives,omitempty"`
	// Target says what Server is: see the Target* constants.
	Target string `json:"target" yaml:"target"`
	OK     bool   `json:"ok" yaml:"ok"`
	Error  string `json:"error,omitempty" yaml:"error,omitempty"`
}

// Values of Kubeconfig.Target and ConfigMap.Target.
const (
	// TargetEndpoint: the controlPlaneEndpoint.
	TargetEndpoint = "endpoint"
	// TargetLocal: the node's own apiserver.
	TargetLocal = "local"
	// TargetNodePrefix + name: another node's apiserver, e.g. "node/shaolin".
	TargetNodePrefix = "node/"
	// TargetLBPrefix + name: a load balancer haadm runs on that node but
	// that is not (yet) the controlPlaneEndpoint, e.g. "lb/emei".
	TargetLBPrefix = "lb/"
	// TargetOther: anything else (an address haadm does not know).
	TargetOther = "other"
)

// ConfigMap is the server written in a cluster ConfigMap that clients
// bootstrap from.
type ConfigMap struct {
	// Name is namespace/name: kube-system/kube-proxy or
	// kube-public/cluster-info.
	Name string `json:"name" yaml:"name"`
	// Key is the data key holding the kubeconfig.
	Key    string `json:"key" yaml:"key"`
	Server string `json:"server" yaml:"server"`
	Want   string `json:"want" yaml:"want"`
	Target string `json:"target" yaml:"target"`
	OK     bool   `json:"ok" yaml:"ok"`
	// Signed (cluster-info only) says whether jws-kubeconfig-* signatures
	// are present. It does not count in the verdict: a cluster without
	// bootstrap tokens has no signatures, and that is fine.
	Signed *bool `json:"signed,omitempty" yaml:"signed,omitempty"`
	// Absent: the cluster has no such ConfigMap, which is right for
	// kube-proxy on a cluster that runs without it (Cilium's replacement,
	// kube-router). It counts as OK.
	Absent bool   `json:"absent,omitempty" yaml:"absent,omitempty"`
	Error  string `json:"error,omitempty" yaml:"error,omitempty"`
}

// Lease is a leader-election lease in kube-system. Informational: it does
// not count in the verdict.
type Lease struct {
	// Component is kube-controller-manager or kube-scheduler.
	Component string `json:"component" yaml:"component"`
	// Holder is holderIdentity ("NODE_UID"); Node is its node part.
	Holder    string `json:"holder" yaml:"holder"`
	Node      string `json:"node,omitempty" yaml:"node,omitempty"`
	RenewTime string `json:"renewTime,omitempty" yaml:"renewTime,omitempty"`
	Error     string `json:"error,omitempty" yaml:"error,omitempty"`
}

// Lock is kube-system/haadm-lock, the Lease a haadm run that changes the
// cluster holds (see package lock). Informational: it does not count in
// the verdict, but a cluster being changed right now explains one.
type Lock struct {
	// Holder is the run as haadm names it: "`haadm promote` by root@shaolin (pid 4242)".
	Holder  string `json:"holder" yaml:"holder"`
	Command string `json:"command,omitempty" yaml:"command,omitempty"`
	User    string `json:"user,omitempty" yaml:"user,omitempty"`
	Host    string `json:"host,omitempty" yaml:"host,omitempty"`
	PID     int    `json:"pid,omitempty" yaml:"pid,omitempty"`
	// Started is when the run began, RFC 3339 in UTC; AgeSeconds is how
	// long ago that was when status started.
	Started    string `json:"started,omitempty" yaml:"started,omitempty"`
	AgeSeconds int64  `json:"ageSeconds" yaml:"ageSeconds"`
	RenewTime  string `json:"renewTime" yaml:"renewTime"`
	// Stale: not renewed within its duration; the run was probably killed
	// or lost its connection (the next run says what to do).
	Stale bool   `json:"stale" yaml:"stale"`
	Error string `json:"error,omitempty" yaml:"error,omitempty"`
}

// Node is a Kubernetes Node as the API shows it.
type Node struct {
	Name string `json:"name" yaml:"name"`
	// IP is the InternalIP.
	IP string `json:"ip" yaml:"ip"`
	// ControlPlane: labelled node-role.kubernetes.io/control-plane.
	ControlPlane bool `json:"controlPlane" yaml:"controlPlane"`
	// Tainted: has the NoSchedule taint with that key.
	Tainted        bool   `json:"tainted" yaml:"tainted"`
	Ready          bool   `json:"ready" yaml:"ready"`
	KubeletVersion string `json:"kubeletVersion" yaml:"kubeletVersion"`
}

// LoadBalancer is a load balancer in front of the apiservers: one haadm
// wrote (/etc/nginx/nginx.conf on Node), or, with an empty Node, the
// controlPlaneEndpoint of a load balancer haadm does not run, of which
// only the endpoint is probed.
type LoadBalancer struct {
	Node string `json:"node" yaml:"node"`
	// Listen is the listen address of the nginx stream server.
	Listen string `json:"listen" yaml:"listen"`
	// Address is the URL whose /readyz was probed through the balancer.
	Address  string    `json:"address" yaml:"address"`
	Ready    bool      `json:"ready" yaml:"ready"`
	Backends []Backend `json:"backends" yaml:"backends"`
	Error    string    `json:"error,omitempty" yaml:"error,omitempty"`
}

// Backend is one upstream server of a load balancer, probed from the
// load balancer's node (GET /readyz), as the balancer itself reaches it.
type Backend struct {
	Address string `json:"address" yaml:"address"`
	Up      bool   `json:"up" yaml:"up"`
	Error   string `json:"error,omitempty" yaml:"error,omitempty"`
}

// Timing says when and how long the collection ran.
type Timing struct {
	// Started is RFC 3339 in UTC.
	Started string `json:"started" yaml:"started"`
	WallMs  int64  `json:"wallMs" yaml:"wallMs"`
}
