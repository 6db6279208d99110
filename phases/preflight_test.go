package phases

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/node"
)

// ss output for a port held by prog, as `ss -Htlnp` prints it.
func ssListening(port int, prog string) string {
	return fmt.Sprintf("LISTEN 0      4096               *:%d              *:*    users:((\"%s\",pid=4242,fd=3))\n", port, prog)
}

// TestPreflight: each case is the healthy lab with one thing wrong (or
// none). Preflight must name the problem, say that nothing was changed, and
// indeed change nothing.
func TestPreflight(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    setup
		// etcd starts shaolin's etcd; the etcd checks only run when the
		// others found nothing.
		etcd bool
		// mutate breaks the lab; it may return more strings the error
		// must mention (known only once it ran).
		mutate  func(t *testing.T, f *fixture) []string
		wantErr []string // nil: preflight passes
		timeout time.Duration
	}{
		{name: "healthy lab", etcd: true},
		{
			name: "new node runs another kubelet version",
			s: setup{EditNodes: func(n map[string]*corev1.Node) {
				n["emei"].Status.NodeInfo.KubeletVersion = "v1.35.2"
			}},
			wantErr: []string{"preflight found 1 problem(s); nothing was changed",
				"node emei runs kubelet v1.35.2 but shaolin runs v1.36.3", "kubeadm upgrade node"},
		},
		{
			name: "a port is busy",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("emei", func(p *probe) { p.listen = ssListening(6443, "python3") })
				return nil
			},
			wantErr: []string{"nothing was changed", "node emei: port 6443 is in use by another program", `"python3"`},
		},
		{
			name: "the load balancer port is busy",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("emei", func(p *probe) { p.listen = ssListening(8443, "haproxy") })
				return nil
			},
			wantErr: []string{"node emei: port 8443 is in use by another program", "haproxy"},
		},
		{
			// A re-run: the ports are held by the components haadm started.
			name: "ports held by the node's own control plane",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				var ss string
				for _, p := range controlPlanePorts(6443) {
					ss += ssListening(p.port, p.owner)
				}
				f.setProbe("wudang", func(p *probe) { p.listen = ss })
				f.setProbe("emei", func(p *probe) { p.listen = ssListening(8443, "nginx") + ssListening(22, "sshd") })
				return nil
			},
		},
		{
			name: "new node not Ready",
			s: setup{EditNodes: func(n map[string]*corev1.Node) {
				for i, c := range n["wudang"].Status.Conditions {
					if c.Type == corev1.NodeReady {
						n["wudang"].Status.Conditions[i].Status = corev1.ConditionFalse
					}
				}
			}},
			wantErr: []string{"node wudang is not Ready"},
		},
		{
			name: "ssh reaches another machine",
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("wudang", func(p *probe) { p.addrs = "2: eth0    inet 10.250.0.99/24 brd 10.250.0.255 scope global eth0\n" })
				return nil
			},
			wantErr: []string{"node wudang: ssh reaches a machine without the node's address 10.250.0.13"},
		},
		{
			name: "several problems are all reported",
			s: setup{EditNodes: func(n map[string]*corev1.Node) {
				n["wudang"].Status.NodeInfo.KubeletVersion = "v1.36.2"
			}},
			mutate: func(t *testing.T, f *fixture) []string {
				f.fakes["shaolin"].RemoveFile(pkiDir + "/etcd/ca.key")
				return nil
			},
			wantErr: []string{"preflight found 2 problem(s)", "node wudang runs kubelet v1.36.2",
				"node shaolin: /etc/kubernetes/pki/etcd/ca.key is missing"},
		},
		{
			name:    "unsupported Kubernetes version",
			mutate:  func(t *testing.T, f *fixture) []string { f.c.Facts.KubernetesVersion = "v1.30.14"; return nil },
			wantErr: []string{"cluster runs Kubernetes v1.30.14; haadm supports v1.31 to v1.36"},
		},
		{
			name:    "external etcd",
			mutate:  func(t *testing.T, f *fixture) []string { f.c.Facts.ExternalEtcd = true; return nil },
			wantErr: []string{"uses an external etcd"},
		},
		{
			name:    "nothing to promote",
			s:       setup{Opts: Options{Nodes: []string{}, LBNode: "emei"}},
			wantErr: []string{"--nodes names no node to promote"},
		},
		{
			name: "nginx not installed, --no-install",
			s:    setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBNode: "emei", NoInstall: true}},
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("emei", func(p *probe) { p.nginx = noNginx })
				return nil
			},
			wantErr: []string{"node emei: nginx not installed (--no-install)", "apt-get install -y nginx-light libnginx-mod-stream", "drop --no-install"},
		},
		{
			name: "nginx not installed and no package manager",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("emei", func(p *probe) { p.nginx = "missing=nginx\n" })
				return nil
			},
			wantErr: []string{"node emei: nginx not installed, and it has no apt-get, dnf or yum", "nginx-light libnginx-mod-stream"},
		},
		{
			name: "nginx not installed: installed once every check passed, then judged",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("emei", func(p *probe) { p.nginx = noNginx })
				f.fakes["emei"].Respond("p=/usr/sbin/policy-rc.d;", "", nil)
				f.fakes["emei"].Respond("for b in nginx;", "pm=apt-get\n", nil)
				t.Cleanup(func() {
					if !slices.ContainsFunc(f.fakes["emei"].Calls(), func(c node.Call) bool {
						return c.Kind == node.CallRun && strings.Contains(c.Cmd, "apt-get install -y -q --no-install-recommends nginx-light libnginx-mod-stream")
					}) {
						t.Error("nginx was not installed")
					}
					mustContain(t, f.console.String(), "[preflight] emei: installed nginx-light libnginx-mod-stream")
				})
				return nil
			},
		},
		{
			name: "nginx installed by preflight refuses the configuration",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("emei", func(p *probe) { p.nginx = noNginx })
				f.fakes["emei"].Respond("p=/usr/sbin/policy-rc.d;", "", nil)
				f.fakes["emei"].Respond("for b in nginx;", "pm=apt-get\nlb-refused nginx: [emerg] unknown directive \"stream\"\n", nil)
				return nil
			},
			wantErr: []string{"node emei: nginx refuses the configuration haadm would write", `unknown directive "stream"`},
		},
		{
			name: "a package install that fails",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("emei", func(p *probe) { p.nginx = noNginx })
				f.fakes["emei"].Fail("p=/usr/sbin/policy-rc.d;", 100, "E: Unable to locate package libnginx-mod-stream")
				return nil
			},
			wantErr: []string{"node emei: installing nginx-light libnginx-mod-stream failed", "Unable to locate package"},
		},
		{
			name: "nginx without stream module",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				// Debian's nginx -V says --with-stream=dynamic with or
				// without the module: only nginx -t of the rendered file tells.
				f.fakes["emei"].Respond("if crictl inspecti", "lb-refused nginx: [emerg] unknown directive \"stream\" in /tmp/haadm-lb-x.conf:15\n", nil)
				return nil
			},
			wantErr: []string{"node emei: nginx refuses the configuration haadm would write", "libnginx-mod-stream", `unknown directive "stream"`},
		},
		{
			name: "an image missing on a new master, and it cannot be pulled",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.fakes["wudang"].Respond("if crictl inspecti", "missing registry.k8s.io/etcd:3.6.8-0\n", nil)
				f.fakes["wudang"].Fail("crictl pull", 1, "no route to registry")
				return nil
			},
			wantErr: []string{"node wudang: image registry.k8s.io/etcd:3.6.8-0 is not there and cannot be pulled", "ctr -n k8s.io images import"},
		},
		{
			name: "an LB node that is a new master: images missing and nginx refusing, both said",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.fakes["emei"].Respond("if crictl inspecti", "missing registry.k8s.io/kube-apiserver:v1.36.3\nlb-refused nginx: [emerg] unknown directive \"stream\"\n", nil)
				return nil
			},
			wantErr: []string{"node emei: nginx refuses the configuration haadm would write", `unknown directive "stream"`},
		},
		{
			name: "a new master short of disk",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("wudang", func(p *probe) { p.freeKiB = "102400\n" })
				return nil
			},
			wantErr: []string{"node wudang: only 100 MiB free under /var/lib"},
		},
		{
			name: "an endpoint name that does not resolve on a node",
			s:    setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBMode: "none", Endpoint: "k8s-api.lab:6443"}},
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("wudang", func(p *probe) { p.resolved = "\n" })
				return nil
			},
			wantErr: []string{"node wudang: the endpoint's name k8s-api.lab does not resolve there", "--etc-hosts"},
		},
		{
			name: "--lb-mode none: no nginx needed",
			s:    setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBMode: "none", Endpoint: "k8s-api.lab:6443"}},
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("emei", func(p *probe) { p.nginx = noNginx })
				return nil
			},
		},
		{
			name: "node-local: every node needs nginx",
			s:    setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBMode: "node-local"}},
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("shaolin", func(p *probe) { p.nginx = "missing=nginx\n" })
				f.setProbe("wudang", func(p *probe) { p.listen = ssListening(6444, "kubelet") })
				return nil
			},
			wantErr: []string{"preflight found 2 problem(s)", "node shaolin: nginx not installed, and it has no apt-get", "node wudang: port 6444 is in use by another program"},
		},
		{
			name: "ssh fails on a node",
			mutate: func(t *testing.T, f *fixture) []string {
				f.fakes["wudang"].Fail("ip -o addr show", 255, "ssh: connect to host wudang port 22: No route to host")
				return nil
			},
			wantErr: []string{"node wudang: ", "No route to host"},
		},
		{
			name: "a probe that prints something else",
			mutate: func(t *testing.T, f *fixture) []string {
				f.fakes["emei"].Respond("ip -o addr show", "-bash: ss: command not found\n", nil)
				return nil
			},
			wantErr: []string{"node emei: unexpected preflight output (1 sections)"},
		},
		{
			// Only the new masters need the control-plane ports free.
			name: "a worker's ports are its own business",
			s:    setup{Worker: true},
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("wutai", func(p *probe) { p.listen = ssListening(6443, "python3") + ssListening(2379, "other") })
				return nil
			},
		},
		{
			// No etcd started: the client waits for it as long as the run
			// lets it.
			name:    "etcd unreachable",
			timeout: 2 * time.Second,
			wantErr: []string{"preflight found 1 problem(s)", "etcd: listing etcd members: "},
		},
		{
			name: "leftover etcd data on a new node",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				f.setProbe("wudang", func(p *probe) { p.etcdData = "member\n" })
				return nil
			},
			wantErr: []string{"node wudang: /var/lib/etcd is not empty (member) but etcd has no member for wudang"},
		},
		{
			name: "etcd data of the node's own unstarted learner",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				addLearner(t, f, "emei", "https://10.250.0.12:2380")
				f.setProbe("emei", func(p *probe) { p.etcdData = "member\n" })
				return nil
			},
		},
		{
			name: "stale etcd member",
			etcd: true,
			mutate: func(t *testing.T, f *fixture) []string {
				m := addLearner(t, f, "kunlun", "https://10.250.0.99:2380")
				return []string{fmt.Sprintf("etcd member %s", m.HexID()), "`etcdctl member remove " + m.HexID() + "` on shaolin"}
			},
			wantErr: []string{"is stale", `peer https://10.250.0.99:2380`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tt.s)
			if tt.etcd {
				f.startEtcd()
			}
			var more []string
			if tt.mutate != nil {
				more = tt.mutate(t, f)
			}
			// Only what happens from here counts as preflight's doing.
			before := map[string]int{}
			for n, h := range f.fakes {
				before[n] = len(h.Calls())
			}
			timeout := 30 * time.Second
			if tt.timeout != 0 {
				timeout = tt.timeout
			}
			err := Preflight(testCtx(t, timeout), f.c)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("preflight: %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("preflight passed")
				}
				want := append(append([]string{"nothing was changed"}, tt.wantErr...), more...)
				mustContain(t, err.Error(), want...)
			}
			for n, h := range f.fakes {
				for _, c := range h.Calls()[before[n]:] {
					// Pulling a missing image is the one thing preflight
					// may do, as kubeadm join's does.
					// So is installing the load balancer's packages.
					if c.Kind == node.CallWrite || c.Kind == node.CallRun && !strings.HasPrefix(c.Cmd, "crictl pull ") && !strings.HasPrefix(c.Cmd, "p=/usr/sbin/policy-rc.d;") {
						t.Errorf("preflight changed %s: %+v", n, c)
					}
				}
			}
			if m := f.mutations(); len(m) != 0 {
				t.Errorf("preflight changed the API: %v", m)
			}
			// The probe on every node, and on the new masters and LB
			// nodes one more for images and nginx -t, whatever it finds.
			for n := range f.fakes {
				max := 1
				if f.c.isNew(n) || slices.Contains(f.c.LBNodes(), n) {
					max = 2
				}
				if _, ok := f.c.toInstall[n]; ok {
					max++ // what the install brought, judged
				}
				if got := f.meters[n].counts()["Output"]; got < 1 || got > max {
					t.Errorf("%s: %d commands, want the probe and at most %d", n, got, max)
				}
			}
		})
	}
}

// addLearner adds an etcd learner that never starts, as a join that stopped
// half way leaves it.
func addLearner(t *testing.T, f *fixture, name, peerURL string) etcdm.Member {
	t.Helper()
	cli, err := f.c.EtcdClient(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20e9)
	defer cancel()
	m, _, err := etcdm.EnsureLearner(ctx, cli, name, peerURL)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPreflightRoundTrips: preflight reads each node in one command, and
// the first master once more for the files every phase copies (the etcd
// credentials come in one more round trip); it writes nothing.
func TestPreflightRoundTrips(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Worker: true})
	f.startEtcd()
	if err := Preflight(testCtx(t, 30*time.Second), f.c); err != nil {
		t.Fatal(err)
	}
	for n := range f.fakes {
		want := map[string]int{"Output": 1}
		if f.c.isNew(n) {
			want = map[string]int{"Output": 2} // the probe, then images (and nginx -t on emei)
		}
		if n == "shaolin" {
			want = map[string]int{"Output": 1, "ReadFiles": 2}
		}
		got := f.meters[n].counts()
		delete(got, "Dial")
		if !maps.Equal(got, want) {
			t.Errorf("%s: %v, want %v", n, got, want)
		}
	}
	cmd := f.calls("emei", node.CallOutput)[0]
	if !strings.HasPrefix(cmd, "ip -o addr show; printf '\\n--haadm--\\n'; ss -Htlnp; ") || !strings.Contains(cmd, "for b in nginx; do command -v $b") || !strings.Contains(cmd, "df -Pk /var/lib") {
		t.Errorf("probe = %q", cmd)
	}
}

// TestParseListeners: ss -Htlnp as it prints IPv4, IPv6 and wildcard
// listeners, with and without the process column.
func TestParseListeners(t *testing.T) {
	t.Parallel()
	out := "LISTEN 0      4096        10.250.0.12:2380       0.0.0.0:*    users:((\"etcd\",pid=911,fd=8))\n" +
		"LISTEN 0      4096                  *:6443             *:*    users:((\"kube-apiserver\",pid=901,fd=3))\n" +
		"LISTEN 0      511                [::]:8443          [::]:*    users:((\"nginx\",pid=77,fd=6),(\"nginx\",pid=76,fd=6))\n" +
		"LISTEN 0      128           127.0.0.1:10248      0.0.0.0:*\n" +
		"garbage\n\n"
	got := parseListeners(out)
	want := map[int]string{2380: `users:(("etcd",pid=911,fd=8))`, 6443: `users:(("kube-apiserver",pid=901,fd=3))`,
		8443: `users:(("nginx",pid=77,fd=6),("nginx",pid=76,fd=6))`, 10248: ""}
	if !maps.Equal(got, want) {
		t.Errorf("parseListeners = %v, want %v", got, want)
	}
}
