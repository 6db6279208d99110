package controlplane

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haadm/haadm/internal/testkit"
)

var created = time.Date(2026, 11, 22, 2, 38, 0, 0, time.UTC)

func TestFirstMaster(t *testing.T) {
	t.Parallel()
	node := func(name string, master bool, minute int) Node {
		return Node{Name: name, ControlPlane: master, Created: created.Add(time.Duration(minute) * time.Minute)}
	}
	tests := []struct {
		name   string
		nodes  []Node
		except []string
		want   string
	}{
		{"none", nil, nil, ""},
		{"no labelled node", []Node{node("emei", false, 0), node("wudang", false, 1)}, nil, ""},
		{"the oldest labelled", []Node{node("emei", true, 2), node("shaolin", true, 1), node("wudang", true, 3)}, nil, "shaolin"},
		{"an older worker does not count", []Node{node("emei", false, 0), node("shaolin", true, 1)}, nil, "shaolin"},
		{"ties go by name", []Node{node("wudang", true, 1), node("emei", true, 1), node("shaolin", true, 1)}, nil, "emei"},
		{"except skips nodes being promoted", []Node{node("emei", true, 0), node("shaolin", true, 1)}, []string{"emei"}, "shaolin"},
		{"except every master", []Node{node("emei", true, 0)}, []string{"emei"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := slices.Clone(tt.nodes)
			if got := FirstMaster(tt.nodes, tt.except...); got != tt.want {
				t.Errorf("FirstMaster = %q, want %q", got, tt.want)
			}
			if !slices.Equal(before, tt.nodes) {
				t.Errorf("FirstMaster reordered its argument: %v", tt.nodes)
			}
		})
	}
}

// TestFirstMasterLab: in the captured cluster kubeadm init ran on shaolin.
func TestFirstMasterLab(t *testing.T) {
	t.Parallel()
	nodes := NodesOf(testkit.LabNodes(t))
	if got := FirstMaster(nodes); got != "shaolin" {
		t.Errorf("FirstMaster = %q, want shaolin", got)
	}
	// A promotion labels emei and wudang; they joined later, so shaolin
	// stays first.
	for i := range nodes {
		nodes[i].ControlPlane = true
	}
	if got := FirstMaster(nodes); got != "shaolin" {
		t.Errorf("after the promotion FirstMaster = %q, want shaolin", got)
	}
}

func TestNodeOf(t *testing.T) {
	t.Parallel()
	ready := func(s corev1.ConditionStatus) []corev1.NodeCondition {
		return []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: s}}
	}
	ts := metav1.NewTime(created)
	tests := []struct {
		name string
		in   corev1.Node
		want Node
	}{
		{"empty", corev1.Node{}, Node{NotReady: "no Ready condition posted yet"}},
		{"master", corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "shaolin", CreationTimestamp: ts, Labels: map[string]string{Label: ""}},
			Spec:       corev1.NodeSpec{Taints: []corev1.Taint{Taint()}},
			Status: corev1.NodeStatus{
				Addresses: []corev1.NodeAddress{
					{Type: corev1.NodeHostName, Address: "shaolin"},
					{Type: corev1.NodeExternalIP, Address: "203.0.113.11"},
					{Type: corev1.NodeInternalIP, Address: "10.250.0.11"},
					{Type: corev1.NodeInternalIP, Address: "fd00::11"},
				},
				Conditions: ready(corev1.ConditionTrue),
				NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.36.3"},
			},
		}, Node{Name: "shaolin", IP: "10.250.0.11", KubeletVersion: "v1.36.3", ControlPlane: true, Tainted: true, Ready: true, Created: created}},
		{"labelled with a value, not ready", corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "emei", Labels: map[string]string{Label: "true"}},
			Status:     corev1.NodeStatus{Conditions: ready(corev1.ConditionUnknown)},
		}, Node{Name: "emei", ControlPlane: true, NotReady: "Ready Unknown"}},
		{"not ready, as the kubelet says", corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "huashan"},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse,
				Reason: "KubeletNotReady", Message: "container runtime network not ready: NetworkReady=false"}}},
		}, Node{Name: "huashan", NotReady: "Ready False: KubeletNotReady: container runtime network not ready: NetworkReady=false"}},
		{"the taint with another effect or key is not kubeadm's", corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "wudang"},
			Spec: corev1.NodeSpec{Taints: []corev1.Taint{
				{Key: Label, Effect: corev1.TaintEffectPreferNoSchedule},
				{Key: "node-role.kubernetes.io/master", Effect: corev1.TaintEffectNoSchedule},
			}},
			Status: corev1.NodeStatus{Conditions: ready(corev1.ConditionFalse)},
		}, Node{Name: "wudang", NotReady: "Ready False"}},
		{"the taint with a value still counts", corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "wudang"},
			Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: Label, Value: "x", Effect: corev1.TaintEffectNoSchedule}}},
		}, Node{Name: "wudang", Tainted: true, NotReady: "no Ready condition posted yet"}},
		{"no InternalIP", corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "wutai"},
			Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "203.0.113.14"}}},
		}, Node{Name: "wutai", NotReady: "no Ready condition posted yet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := NodeOf(tt.in); got != tt.want {
				t.Errorf("NodeOf =\n  %+v\nwant\n  %+v", got, tt.want)
			}
		})
	}
}

// TestNodesOfLab reads the Nodes a real kubeadm cluster served.
func TestNodesOfLab(t *testing.T) {
	t.Parallel()
	got := NodesOf(testkit.LabNodes(t))
	var names []string
	for _, n := range got {
		names = append(names, n.Name)
		if n.IP != testkit.LabIPs()[n.Name] || !n.Ready || n.KubeletVersion != testkit.LabVersion {
			t.Errorf("%s: %+v", n.Name, n)
		}
		if master := n.Name == "shaolin"; n.ControlPlane != master || n.Tainted != master || Marked(n) != master {
			t.Errorf("%s: control plane %v, tainted %v", n.Name, n.ControlPlane, n.Tainted)
		}
	}
	if !slices.Equal(names, []string{"emei", "shaolin", "wudang"}) {
		t.Errorf("NodesOf: %q, want sorted by name", names)
	}
}

func TestKubeconfigTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file   string
		master bool
		want   KubeconfigRule
		ok     bool
	}{
		{AdminConf, true, KubeconfigRule{AdminConf, TargetEndpoint, -1}, true},
		{KubeletConf, true, KubeconfigRule{KubeletConf, TargetLocal, TargetEndpoint}, true},
		{ControllerManagerConf, true, KubeconfigRule{ControllerManagerConf, TargetLocal, -1}, true},
		{SchedulerConf, true, KubeconfigRule{SchedulerConf, TargetLocal, -1}, true},
		{KubeletConf, false, KubeconfigRule{KubeletConf, TargetEndpoint, -1}, true},
		// A worker has no other kubeconfig, and super-admin.conf is not
		// one clients use.
		{AdminConf, false, KubeconfigRule{}, false},
		{SchedulerConf, false, KubeconfigRule{}, false},
		{SuperAdminConf, true, KubeconfigRule{}, false},
		{"", true, KubeconfigRule{}, false},
	}
	for _, tt := range tests {
		got, ok := KubeconfigTarget(tt.file, tt.master)
		if got != tt.want || ok != tt.ok {
			t.Errorf("KubeconfigTarget(%q, master %v) = %+v, %v; want %+v, %v", tt.file, tt.master, got, ok, tt.want, tt.ok)
		}
	}
	// The order is the report's; status lists a master's files in it.
	var files []string
	for _, r := range Kubeconfigs(true) {
		files = append(files, r.File)
	}
	if want := []string{AdminConf, KubeletConf, ControllerManagerConf, SchedulerConf}; !slices.Equal(files, want) {
		t.Errorf("Kubeconfigs(true): %q, want %q", files, want)
	}
}

func TestTargetString(t *testing.T) {
	t.Parallel()
	if TargetLocal.String() != "local apiserver" || TargetEndpoint.String() != "endpoint" {
		t.Errorf("%q %q", TargetLocal, TargetEndpoint)
	}
}

func TestAddresses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ got, want string }{
		{APIServerURL("10.250.0.11", DefaultAPIServerPort), "https://10.250.0.11:6443"},
		{APIServerURL("fd00::11", 7443), "https://[fd00::11]:7443"},
		{EtcdClientURL("10.250.0.12"), "https://10.250.0.12:2379"},
		{EtcdPeerURL("fd00::12"), "https://[fd00::12]:2380"},
		{EndpointHostPort("lb.example", DefaultAPIServerPort), "lb.example:6443"},
		{EndpointHostPort("lb.example:8443", DefaultAPIServerPort), "lb.example:8443"},
		{EndpointHostPort("10.250.0.12", 7443), "10.250.0.12:7443"},
		{EndpointHostPort("[fd00::12]", DefaultAPIServerPort), "[fd00::12]:6443"},
		{EndpointHostPort("[fd00::12]:8443", DefaultAPIServerPort), "[fd00::12]:8443"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestFirstAndInitMaster: the source of a promote is the oldest Ready
// master; a rollback's is the oldest, Ready or not.
func TestFirstAndInitMaster(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	nodes := []Node{
		{Name: "shaolin", ControlPlane: true, Ready: false, Created: t0},
		{Name: "emei", ControlPlane: true, Ready: true, Created: t0.Add(time.Hour)},
		{Name: "wudang", ControlPlane: true, Ready: true, Created: t0.Add(2 * time.Hour)},
		{Name: "huashan", Ready: true, Created: t0.Add(-time.Hour)},
	}
	if got := FirstMaster(nodes); got != "emei" {
		t.Errorf("FirstMaster = %q, want emei (shaolin is not Ready)", got)
	}
	if got := FirstMaster(nodes, "emei"); got != "wudang" {
		t.Errorf("FirstMaster except emei = %q, want wudang", got)
	}
	if got := InitMaster(nodes); got != "shaolin" {
		t.Errorf("InitMaster = %q, want shaolin", got)
	}
	if got := InitMaster(nodes[3:]); got != "" {
		t.Errorf("InitMaster of workers = %q", got)
	}
}
