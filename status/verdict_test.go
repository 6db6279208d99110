package status

import (
	"slices"
	"strings"
	"testing"
)

func TestJudgeHA(t *testing.T) {
	r := haReport()
	v, why := Judge(r)
	if v != VerdictHA || len(why) != 0 {
		t.Fatalf("Judge = %s %q, want ha without reasons", v, why)
	}
	if why == nil {
		t.Error("reasons must be [] not null in JSON")
	}
	if ExitCode(r) != ExitHA {
		t.Errorf("ExitCode = %d", ExitCode(r))
	}
}

func TestJudgeSingleMaster(t *testing.T) {
	r := singleMasterReport()
	want := []string{
		"etcd: 1 voting member(s), HA needs at least 3",
		"1 apiserver(s) ready, HA needs at least 3",
		"no controlPlaneEndpoint in kubeadm-config: clients can only use the first master",
		"1 control-plane node(s) (shaolin), HA needs at least 3",
	}
	if r.Verdict != VerdictSingleMaster || !slices.Equal(r.Reasons, want) {
		t.Fatalf("Judge = %s\n%s\nwant single-master\n%s", r.Verdict, strings.Join(r.Reasons, "\n"), strings.Join(want, "\n"))
	}
	if ExitCode(r) != ExitSingleMaster {
		t.Errorf("ExitCode = %d", ExitCode(r))
	}

	// A broken single master is still a single master: the reasons say
	// what is broken too.
	r.APIServers[0].Ready, r.APIServers[0].Error = false, "readyz: HTTP 500: etcd failed: reason withheld"
	v, why := Judge(r)
	if v != VerdictSingleMaster || !slices.Contains(why, "apiserver on shaolin (https://10.250.0.11:6443): not ready (readyz: HTTP 500: etcd failed: reason withheld)") {
		t.Errorf("broken single master: %s %q", v, why)
	}

	// Without etcd or kubeadm-config haadm cannot tell it is one.
	r = singleMasterReport()
	r.Etcd = Etcd{Error: "connect: context deadline exceeded", Members: []EtcdMember{}}
	if v, _ := Judge(r); v != VerdictDegraded {
		t.Errorf("etcd unreadable: %s, want degraded", v)
	}
	r = singleMasterReport()
	r.API.KubeadmConfigError = "read kube-system/kubeadm-config: forbidden"
	if v, _ := Judge(r); v != VerdictDegraded {
		t.Errorf("kubeadm-config unreadable: %s, want degraded", v)
	}
}

// TestJudgeDegraded breaks an HA report one way at a time; each problem
// must give exactly the reasons listed, naming node and component.
func TestJudgeDegraded(t *testing.T) {
	member := func(r *Report, name string) *EtcdMember {
		for i := range r.Etcd.Members {
			if r.Etcd.Members[i].Name == name {
				return &r.Etcd.Members[i]
			}
		}
		panic(name)
	}
	apiserver := func(r *Report, name string) *APIServer {
		for i := range r.APIServers {
			if r.APIServers[i].Node == name {
				return &r.APIServers[i]
			}
		}
		panic(name)
	}
	kubeconfig := func(r *Report, node, file string) *Kubeconfig {
		for i := range r.Kubeconfigs {
			if r.Kubeconfigs[i].Node == node && r.Kubeconfigs[i].File == file {
				return &r.Kubeconfigs[i]
			}
		}
		panic(node + file)
	}
	nodeRow := func(r *Report, name string) *Node {
		for i := range r.Nodes {
			if r.Nodes[i].Name == name {
				return &r.Nodes[i]
			}
		}
		panic(name)
	}
	tests := []struct {
		name   string
		mutate func(r *Report)
		want   []string
	}{
		{"etcd member unhealthy", func(r *Report) {
			m := member(r, "wudang")
			m.Healthy, m.Error, m.RaftIndex = false, "context deadline exceeded", 0
		}, []string{"etcd member wudang: unhealthy (context deadline exceeded)"}},
		{"etcd learner", func(r *Report) {
			member(r, "wudang").Learner = true
		}, []string{
			"etcd member wudang: still a learner, not a voting member",
			"etcd: 2 voting members, HA needs at least 3 (with 2, losing either stops etcd)",
		}},
		{"etcd member added but not started", func(r *Report) {
			m := member(r, "wudang")
			*m = EtcdMember{ID: m.ID, PeerURLs: m.PeerURLs, ClientURLs: []string{}, Learner: true, Error: "not started"}
		}, []string{
			"etcd member befae0a5f54610a6: added but not started",
			"etcd: 2 voting members, HA needs at least 3 (with 2, losing either stops etcd)",
		}},
		{"two etcd voters", func(r *Report) {
			r.Etcd.Members = r.Etcd.Members[:2]
		}, []string{"etcd: 2 voting members, HA needs at least 3 (with 2, losing either stops etcd)"}},
		{"no etcd leader", func(r *Report) {
			member(r, "shaolin").Leader = false
		}, []string{"etcd: no member reports a leader"}},
		{"etcd unreachable", func(r *Report) {
			r.Etcd = Etcd{Error: "connect: dial tcp 10.250.0.11:2379: connection refused", Members: []EtcdMember{}}
		}, []string{"etcd: connect: dial tcp 10.250.0.11:2379: connection refused"}},
		{"apiserver not ready", func(r *Report) {
			a := apiserver(r, "emei")
			a.Ready, a.Error = false, "dial tcp 10.250.0.12:6443: connect: connection refused"
		}, []string{
			"apiserver on emei (https://10.250.0.12:6443): not ready (dial tcp 10.250.0.12:6443: connect: connection refused)",
			"2 apiserver(s) ready, HA needs at least 3",
		}},
		{"certificate lacks the LB", func(r *Report) {
			apiserver(r, "wudang").SANsMissing = []string{"IP:10.250.0.12"}
		}, []string{"apiserver certificate on wudang: does not cover IP:10.250.0.12"}},
		{"certificate expired", func(r *Report) {
			apiserver(r, "wudang").CertExpires = "2026-11-21T00:00:00Z"
		}, []string{"apiserver certificate on wudang: expired 2026-11-21T00:00:00Z"}},
		{"kubelet.conf still on the first master", func(r *Report) {
			k := kubeconfig(r, "emei", "kubelet.conf")
			k.Server, k.Target, k.OK = "https://10.250.0.11:6443", "node/shaolin", false
			k.Want, k.Alternatives = "https://10.250.0.12:6443", []string{"https://10.250.0.12:8443"}
		}, []string{"kubelet.conf on emei points at https://10.250.0.11:6443, want https://10.250.0.12:6443 or https://10.250.0.12:8443"}},
		{"kubeconfig missing", func(r *Report) {
			k := kubeconfig(r, "wudang", "scheduler.conf")
			k.Server, k.Target, k.OK, k.Error = "", "", false, "/etc/kubernetes/scheduler.conf does not exist"
		}, []string{"scheduler.conf on wudang: /etc/kubernetes/scheduler.conf does not exist"}},
		{"kube-proxy ConfigMap", func(r *Report) {
			c := &r.ConfigMaps[0]
			c.Server, c.Target, c.OK = "https://10.250.0.11:6443", "node/shaolin", false
		}, []string{"ConfigMap kube-system/kube-proxy (kubeconfig.conf) points at https://10.250.0.11:6443, want https://10.250.0.12:8443"}},
		{"cluster-info unsigned does not count", func(r *Report) {
			signed := false
			r.ConfigMaps[1].Signed = &signed
		}, nil},
		{"leases do not count", func(r *Report) {
			r.Leases[0].Error = "leases.coordination.k8s.io \"kube-controller-manager\" not found"
		}, nil},
		{"node not labelled", func(r *Report) {
			nodeRow(r, "wudang").ControlPlane = false
		}, []string{"node wudang: runs control-plane components but lacks the label node-role.kubernetes.io/control-plane"}},
		{"node not tainted", func(r *Report) {
			nodeRow(r, "wudang").Tainted = false
		}, []string{"node wudang: control-plane node without the taint node-role.kubernetes.io/control-plane:NoSchedule"}},
		{"master NotReady", func(r *Report) {
			nodeRow(r, "shaolin").Ready = false
		}, []string{"node shaolin: control-plane node is not Ready"}},
		{"worker NotReady does not count", func(r *Report) {
			r.Nodes = append(r.Nodes, Node{Name: "huashan", IP: "10.250.0.14", KubeletVersion: "v1.36.3"})
		}, nil},
		{"LB backend down", func(r *Report) {
			b := &r.LoadBalancers[0].Backends[2]
			b.Up, b.Error = false, "context deadline exceeded"
		}, []string{"load balancer on emei: backend 10.250.0.13:6443 down (context deadline exceeded)"}},
		{"LB without a master", func(r *Report) {
			r.LoadBalancers[0].Backends = r.LoadBalancers[0].Backends[:2]
		}, []string{"load balancer on emei: apiserver wudang (10.250.0.13:6443) is not a backend"}},
		{"LB backends by name", func(r *Report) {
			for i, n := range []string{"emei", "shaolin.lab.example", "WUDANG"} {
				r.LoadBalancers[0].Backends[i].Address = n + ":6443"
			}
		}, nil},
		{"LB down", func(r *Report) {
			r.LoadBalancers[0].Ready, r.LoadBalancers[0].Error = false, "dial tcp 10.250.0.12:8443: connect: connection refused"
		}, []string{"load balancer on emei (https://10.250.0.12:8443): not ready (dial tcp 10.250.0.12:8443: connect: connection refused)"}},
		{"external LB down", func(r *Report) {
			r.LoadBalancers = []LoadBalancer{{Address: r.Server, Backends: []Backend{}, Error: "context deadline exceeded"}}
		}, []string{"load balancer 10.250.0.12:8443 (https://10.250.0.12:8443): not ready (context deadline exceeded)"}},
		{"endpoint is a master's apiserver", func(r *Report) {
			r.Endpoint, r.Server = "10.250.0.11:6443", "https://10.250.0.11:6443"
			r.LoadBalancers = []LoadBalancer{}
			for i := range r.Kubeconfigs {
				if r.Kubeconfigs[i].File == "admin.conf" {
					r.Kubeconfigs[i].Server, r.Kubeconfigs[i].Want = r.Server, r.Server
				}
			}
			for i := range r.ConfigMaps {
				r.ConfigMaps[i].Server, r.ConfigMaps[i].Want = r.Server, r.Server
			}
		}, []string{"controlPlaneEndpoint 10.250.0.11:6443 is the apiserver of shaolin, not a load balancer: every client still depends on that one master"}},
		{"no endpoint but three masters", func(r *Report) {
			r.Endpoint = ""
		}, []string{"no controlPlaneEndpoint in kubeadm-config: clients can only use the first master"}},
		{"node unreachable", func(r *Report) {
			r.Unreachable = []NodeError{{Node: "wudang", Error: "unreachable: no connection within 5s: context deadline exceeded"}}
		}, []string{"node wudang: not inspected (unreachable: no connection within 5s: context deadline exceeded)"}},
		{"API unreachable", func(r *Report) {
			r.API = API{Error: "list nodes: connection refused"}
		}, []string{"kubernetes API: list nodes: connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := haReport()
			tt.mutate(r)
			v, why := Judge(r)
			wantV := VerdictDegraded
			if tt.want == nil {
				wantV = VerdictHA
			}
			if v != wantV || !slices.Equal(why, nonNil(tt.want)) {
				t.Errorf("Judge = %s\n  %s\nwant %s\n  %s", v, strings.Join(why, "\n  "), wantV, strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	r := haReport()
	for _, tt := range []struct {
		v         Verdict
		reachable bool
		want      int
	}{
		{VerdictHA, true, 0},
		{VerdictDegraded, true, 1},
		{VerdictSingleMaster, true, 2},
		{VerdictDegraded, false, 3},
		{VerdictSingleMaster, false, 3},
	} {
		r.Verdict, r.API.Reachable = tt.v, tt.reachable
		if got := ExitCode(r); got != tt.want {
			t.Errorf("ExitCode(%s, reachable=%v) = %d, want %d", tt.v, tt.reachable, got, tt.want)
		}
	}
	if ExitCode(nil) != ExitNoAPI {
		t.Error("nil report")
	}
}
