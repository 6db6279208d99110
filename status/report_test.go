package status

import (
	"flag"
	"testing"

	"github.com/haadm/haadm/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden/status")

// checkGolden compares got with testdata/golden/status/<name> (see internal/golden).
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, "status", name, got, *update)
}

// haReport is a healthy three-master cluster behind nginx on emei:8443,
// the state haadm promote ends in. Tests break one thing at a time.
func haReport() *Report {
	masters := []struct{ name, ip, id string }{
		{"emei", "10.250.0.12", "575dcc85bd4ea56"},
		{"shaolin", "10.250.0.11", "afbb4ead059bfd6d"},
		{"wudang", "10.250.0.13", "befae0a5f54610a6"},
	}
	r := &Report{
		SchemaVersion: SchemaVersion,
		Endpoint:      "10.250.0.12:8443",
		Server:        "https://10.250.0.12:8443",
		API:           API{Reachable: true},
		Unreachable:   []NodeError{},
		Timing:        Timing{Started: "2026-11-22T03:00:00Z", WallMs: 412},
	}
	lb := LoadBalancer{Node: "emei", Listen: "0.0.0.0:8443", Address: "https://10.250.0.12:8443", Ready: true}
	for i, m := range masters {
		own := "https://" + m.ip + ":6443"
		r.Etcd.Members = append(r.Etcd.Members, EtcdMember{
			Name: m.name, ID: m.id,
			PeerURLs: []string{"https://" + m.ip + ":2380"}, ClientURLs: []string{"https://" + m.ip + ":2379"},
			Started: true, Leader: i == 1, Version: "3.6.8", RaftIndex: 4711, RaftTerm: 3, DBSize: 1843200, Healthy: true,
		})
		r.APIServers = append(r.APIServers, APIServer{
			Node: m.name, Address: own, Via: m.name, Ready: true, Version: "v1.36.3",
			CertSANs:    []string{"DNS:" + m.name, "DNS:kubernetes", "IP:10.250.0.12", "IP:10.96.0.1", "IP:" + m.ip},
			CertExpires: "2027-11-22T02:47:18Z", SANsMissing: []string{},
		})
		for _, k := range []struct{ file, want, target string }{
			{"admin.conf", r.Server, TargetEndpoint},
			{"kubelet.conf", own, TargetLocal},
			{"controller-manager.conf", own, TargetLocal},
			{"scheduler.conf", own, TargetLocal},
		} {
			row := Kubeconfig{Node: m.name, File: k.file, Server: k.want, Want: k.want, Target: k.target, OK: true}
			if k.file == "kubelet.conf" {
				row.Alternatives = []string{r.Server}
			}
			r.Kubeconfigs = append(r.Kubeconfigs, row)
		}
		r.Nodes = append(r.Nodes, Node{Name: m.name, IP: m.ip, ControlPlane: true, Tainted: true, Ready: true, KubeletVersion: "v1.36.3"})
		lb.Backends = append(lb.Backends, Backend{Address: m.ip + ":6443", Up: true})
	}
	r.LoadBalancers = []LoadBalancer{lb}
	signed := true
	r.ConfigMaps = []ConfigMap{
		{Name: "kube-system/kube-proxy", Key: "kubeconfig.conf", Server: r.Server, Want: r.Server, Target: TargetEndpoint, OK: true},
		{Name: "kube-public/cluster-info", Key: "kubeconfig", Server: r.Server, Want: r.Server, Target: TargetEndpoint, OK: true, Signed: &signed},
	}
	r.Leases = []Lease{
		{Component: "kube-controller-manager", Holder: "shaolin_b17a6069", Node: "shaolin", RenewTime: "2026-11-22T02:59:58Z"},
		{Component: "kube-scheduler", Holder: "wudang_bd13754d", Node: "wudang", RenewTime: "2026-11-22T02:59:59Z"},
	}
	r.Verdict, r.Reasons = Judge(r)
	return r
}

// singleMasterReport is the lab as kubeadm init left it.
func singleMasterReport() *Report {
	r := haReport()
	r.Endpoint = ""
	r.Server = "https://10.250.0.11:6443"
	r.FirstMaster = "shaolin"
	r.Etcd.Members = r.Etcd.Members[1:2]
	r.Etcd.Members[0].Leader = true
	r.APIServers = r.APIServers[1:2]
	var kcs []Kubeconfig
	for _, k := range r.Kubeconfigs {
		switch {
		case k.Node == "shaolin":
			k.Server, k.Want, k.Target, k.Alternatives = r.Server, r.Server, TargetLocal, nil
		case k.File == "kubelet.conf":
			k.Server, k.Want, k.Target, k.Alternatives = r.Server, r.Server, "node/shaolin", nil
		default:
			continue
		}
		kcs = append(kcs, k)
	}
	r.Kubeconfigs = kcs
	for i := range r.ConfigMaps {
		r.ConfigMaps[i].Server, r.ConfigMaps[i].Want, r.ConfigMaps[i].Target = r.Server, r.Server, "node/shaolin"
	}
	for i := range r.Nodes {
		if r.Nodes[i].Name != "shaolin" {
			r.Nodes[i].ControlPlane, r.Nodes[i].Tainted = false, false
		}
	}
	r.Leases[1].Holder, r.Leases[1].Node = "shaolin_bd13754d", "shaolin"
	r.LoadBalancers = []LoadBalancer{}
	r.Verdict, r.Reasons = Judge(r)
	return r
}
