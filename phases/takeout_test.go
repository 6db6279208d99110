package phases

import (
	"strings"
	"testing"

	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

// TestQuorumProblems walks removals the way etcd judges them: a majority of
// the voters left must be healthy before each change, and one healthy voter
// must stay.
func TestQuorumProblems(t *testing.T) {
	m := func(id uint64, name string) etcdm.Member {
		return etcdm.Member{ID: id, Name: name, PeerURLs: []string{"https://" + name + ":2380"}, ClientURLs: []string{"https://" + name + ":2379"}}
	}
	shaolin, emei, wudang := m(1, "shaolin"), m(2, "emei"), m(3, "wudang")
	three := []etcdm.Member{shaolin, emei, wudang}
	out := func(ms ...etcdm.Member) []leaving {
		var l []leaving
		for _, x := range ms {
			x := x
			l = append(l, leaving{NodeInfo: NodeInfo{Name: x.Name}, member: &x})
		}
		return l
	}
	for _, tc := range []struct {
		name    string
		members []etcdm.Member
		healthy []uint64
		leave   []leaving
		want    string // "" = allowed
	}{
		{"dead voter of three", three, []uint64{2, 3}, out(shaolin), ""},
		{"healthy voter of three", three, []uint64{1, 2, 3}, out(wudang), ""},
		{"healthy voter while another is dead", three, []uint64{1, 2}, out(emei), "no quorum"},
		{"rollback: two of three, dead first", three, []uint64{1, 2}, out(wudang, emei), ""},
		{"two dead of three", three, []uint64{1}, out(emei), "etcd has no quorum"},
		{"the last voter", []etcdm.Member{shaolin}, []uint64{1}, out(shaolin), "no healthy etcd voter"},
		{"a learner never counts", append(three[:2:2], etcdm.Member{ID: 4, Name: "huashan", IsLearner: true}), []uint64{1, 2}, out(etcdm.Member{ID: 4, Name: "huashan", IsLearner: true}), ""},
		{"no member at all", three, []uint64{1, 2, 3}, []leaving{{NodeInfo: NodeInfo{Name: "kunlun"}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			health := map[uint64]bool{}
			for _, id := range tc.healthy {
				health[id] = true
			}
			p := quorumProblems(tc.members, health, tc.leave)
			switch {
			case tc.want == "" && len(p) > 0:
				t.Errorf("refused: %v", p)
			case tc.want != "" && (len(p) == 0 || !strings.Contains(p[0], tc.want)):
				t.Errorf("got %v, want a refusal saying %q", p, tc.want)
			}
		})
	}
}

// TestPlanBackends drops exactly the leaving masters from one of haadm's
// nginx configurations, keeping its listener, and leaves a config without
// them alone.
func TestPlanBackends(t *testing.T) {
	backends := []lb.Backend{{Name: "shaolin", Address: "10.250.0.11", Port: 6443}, {Name: "emei", Address: "10.250.0.12", Port: 6443}, {Name: "wudang", Address: "10.250.0.13", Port: 6443}}
	for _, tc := range []struct {
		name string
		cfg  lb.Config
	}{
		{"external", lb.Config{ListenAddress: "0.0.0.0", ListenPort: 8443, Backends: backends}},
		{"node-local", func() lb.Config { c := lb.NodeLocal(backends); c.ListenPort = 6444; return c }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := lb.RenderNginx(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(conf), lb.Managed) {
				t.Fatalf("rendered nginx.conf does not start with %q: findLBs would not recognise it", lb.Managed)
			}
			listen, _ := lb.ParseNginxListen(conf)
			have, _ := lb.ParseNginxBackends(conf)
			c := &Cluster{Nodes: map[string]NodeInfo{"shaolin": {Name: "shaolin", IP: "10.250.0.11"}, "emei": {Name: "emei", IP: "10.250.0.12"}, "wudang": {Name: "wudang", IP: "10.250.0.13"}}, Hosts: map[string]node.Host{}}
			site := lbSite{node: "emei", listen: listen, backends: have, conf: node.File{Data: conf}}
			s := planBackends(c, site, func(ip string) bool { return ip == "10.250.0.11" })
			if s == nil {
				t.Fatal("no step to drop shaolin")
			}
			d := strings.Join(s.Details, "\n")
			if !strings.Contains(d, "-        server 10.250.0.11:6443") || strings.Contains(d, "-        server 10.250.0.12") {
				t.Errorf("diff does not drop exactly shaolin:\n%s", d)
			}
			if strings.Contains(d, "-        listen") || strings.Contains(d, "+        listen") || !strings.Contains(d, "+# listen "+listen+" -> 2 apiserver(s)") {
				t.Errorf("listener %s not kept:\n%s", listen, d)
			}
			if s := planBackends(c, site, func(ip string) bool { return ip == "10.250.0.14" }); s != nil {
				t.Errorf("a master not behind this LB gave a step: %s", s.What)
			}
		})
	}
}

func TestWithoutHostsEntry(t *testing.T) {
	in := "127.0.0.1 localhost\n10.250.0.12 k8s.lab " + etcHostsMarker + "\n10.0.0.1 other\n"
	if got := string(withoutHostsEntry([]byte(in))); got != "127.0.0.1 localhost\n10.0.0.1 other\n" {
		t.Errorf("got %q", got)
	}
	if got := string(withHostsEntry(withoutHostsEntry([]byte(in)), "10.250.0.12", "k8s.lab")); got != "127.0.0.1 localhost\n10.0.0.1 other\n10.250.0.12 k8s.lab "+etcHostsMarker+"\n" {
		t.Errorf("round trip: %q", got)
	}
}
