package status

import (
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/kubeadmcfg"
)

func testNode(name, ip string, master bool, created int) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{},
		CreationTimestamp: metav1.NewTime(testNow.Add(time.Duration(created) * time.Minute))}}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	if master {
		n.Labels[controlplane.Label] = ""
	}
	return n
}

// TestKubeconfigWants pins what every kubeconfig must point at, with and
// without an endpoint.
func TestKubeconfigWants(t *testing.T) {
	nodes := []corev1.Node{
		testNode("emei", "10.250.0.12", true, 2),
		testNode("shaolin", "10.250.0.11", true, 1),
		testNode("huashan", "10.250.0.14", false, 3),
	}
	type want struct {
		node, file, want string
		alternatives     []string
	}
	tests := []struct {
		name     string
		endpoint string
		want     []want
	}{
		{"endpoint", "lb.example:8443", []want{
			{"shaolin", "admin.conf", "https://lb.example:8443", nil},
			{"shaolin", "kubelet.conf", "https://10.250.0.11:6443", []string{"https://lb.example:8443"}},
			{"emei", "controller-manager.conf", "https://10.250.0.12:6443", nil},
			{"emei", "scheduler.conf", "https://10.250.0.12:6443", nil},
			{"huashan", "kubelet.conf", "https://lb.example:8443", nil},
		}},
		{"endpoint without port", "lb.example", []want{
			{"huashan", "kubelet.conf", "https://lb.example:6443", nil},
		}},
		{"no endpoint: the oldest master", "", []want{
			{"emei", "admin.conf", "https://10.250.0.11:6443", nil},
			{"emei", "kubelet.conf", "https://10.250.0.12:6443", nil},
			{"huashan", "kubelet.conf", "https://10.250.0.11:6443", nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &apiData{nodes: controlplane.NodesOf(nodes), facts: &kubeadmcfg.Facts{ControlPlaneEndpoint: tt.endpoint}}
			topo := newTopology(d, nil, nil, "")
			for _, w := range tt.want {
				got, alts, why := topo.kubeconfigWant(w.node, w.file)
				if got != w.want || !slices.Equal(alts, w.alternatives) || why != "" {
					t.Errorf("%s on %s: want %q %q (%s), expected %q %q", w.file, w.node, got, alts, why, w.want, w.alternatives)
				}
			}
		})
	}

	// Without kubeadm-config the endpoint is unknown, not unset.
	d := &apiData{nodes: controlplane.NodesOf(nodes), cfgErr: errors.New("forbidden")}
	topo := newTopology(d, nil, nil, "")
	if got, _, why := topo.kubeconfigWant("huashan", "kubelet.conf"); got != "" || why != "kubeadm-config could not be read" {
		t.Errorf("unknown endpoint: %q %q", got, why)
	}
	if got, _, _ := topo.kubeconfigWant("emei", "scheduler.conf"); got != "https://10.250.0.12:6443" {
		t.Errorf("own apiserver needs no kubeadm-config: %q", got)
	}
}

func TestTarget(t *testing.T) {
	d := &apiData{
		nodes:     controlplane.NodesOf([]corev1.Node{testNode("shaolin", "10.250.0.11", true, 1), testNode("emei", "10.250.0.12", true, 2)}),
		facts:     &kubeadmcfg.Facts{ControlPlaneEndpoint: "10.250.0.12:8443"},
		advertise: map[string]string{"emei": "192.168.7.12:6443"},
	}
	topo := newTopology(d, nil, nil, "")
	for _, tt := range []struct{ server, self, want string }{
		{"https://10.250.0.12:8443", "shaolin", TargetEndpoint},
		{"https://10.250.0.12:8443/", "", TargetEndpoint},
		{"https://10.250.0.11:6443", "shaolin", TargetLocal},
		{"https://10.250.0.11:6443", "emei", "node/shaolin"},
		// The advertise address of the apiserver pod wins over InternalIP.
		{"https://192.168.7.12:6443", "emei", TargetLocal},
		{"https://10.250.0.12:6443", "emei", TargetOther},
		{"http://10.250.0.11:6443", "shaolin", TargetOther},
	} {
		if got := topo.target(tt.server, tt.self); got != tt.want {
			t.Errorf("target(%s, %s) = %q, want %q", tt.server, tt.self, got, tt.want)
		}
	}
	if topo.endpointNode != "emei" {
		t.Errorf("endpoint node %q", topo.endpointNode)
	}
	if got := topo.sansInUse("emei"); !slices.Equal(got, []string{"192.168.7.12", "10.250.0.12"}) {
		t.Errorf("SANs in use on emei: %q", got)
	}
}

func TestListenProbeAddr(t *testing.T) {
	for _, tt := range []struct{ listen, ip, want string }{
		{"0.0.0.0:8443", "10.250.0.12", "10.250.0.12:8443"},
		{"[::]:8443", "10.250.0.12", "10.250.0.12:8443"},
		{"8443", "10.250.0.12", "10.250.0.12:8443"},
		{"127.0.0.1:6444", "10.250.0.12", "127.0.0.1:6444"},
		{"0.0.0.0:8443", "", "127.0.0.1:8443"},
	} {
		if got := listenProbeAddr(tt.listen, tt.ip); got != tt.want {
			t.Errorf("listenProbeAddr(%q, %q) = %q, want %q", tt.listen, tt.ip, got, tt.want)
		}
	}
}
