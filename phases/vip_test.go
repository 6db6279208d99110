package phases

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haadm/haadm/lb"
)

// TestLBPlanVIP: in the vip mode every master gets the proxy, then
// keepalived with its own priority and the others as unicast peers; the
// endpoint is the address, which every certificate carries.
func TestLBPlanVIP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBMode: lb.ModeVIP, VIP: "10.250.0.100", LBEngine: lb.EngineHAProxy}})
	f.useFakeEtcd(labVoters()...)
	if f.c.Opts.Endpoint != "10.250.0.100:8443" {
		t.Fatalf("endpoint %s", f.c.Opts.Endpoint)
	}
	if got := f.c.LBNodes(); !slices.Equal(got, []string{"shaolin", "emei", "wudang"}) {
		t.Errorf("LB nodes %v, want every master", got)
	}
	_, ips := f.c.LBSANs()
	if !slices.Contains(ipStrings(ips), "10.250.0.100") {
		t.Errorf("LB SANs %v lack the virtual address", ips)
	}
	for _, n := range []string{"shaolin", "emei", "wudang"} {
		f.fakes[n].Fail("systemctl is-active haproxy", 3, "")
		f.fakes[n].Fail("systemctl is-active keepalived", 3, "")
	}
	ctx := testCtx(t, 30*time.Second)
	w := plan(t, ctx, LB{}, f.c)
	want := []string{
		"shaolin: /etc/haproxy/haproxy.cfg, haproxy started, listening on :8443",
		"emei: /etc/haproxy/haproxy.cfg, haproxy started, listening on :8443",
		"wudang: /etc/haproxy/haproxy.cfg, haproxy started, listening on :8443",
		"shaolin: /etc/keepalived/keepalived.conf, keepalived started, virtual address 10.250.0.100 on eth0",
		"emei: /etc/keepalived/keepalived.conf, keepalived started, virtual address 10.250.0.100 on eth0",
		"wudang: /etc/keepalived/keepalived.conf, keepalived started, virtual address 10.250.0.100 on eth0",
	}
	if got := stepsOf(w); !slices.Equal(got, want) {
		t.Fatalf("plan =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	d := detailsOf(w, "emei")
	mustContain(t, d, "+    bind 0.0.0.0:8443", "+    priority 149", "+    unicast_src_ip 10.250.0.12", "+        10.250.0.11\n", "+        10.250.0.13\n",
		"+        10.250.0.100/24 dev eth0", "+    virtual_router_id 100")
	mustContain(t, detailsOf(w, "shaolin"), "+    priority 150")
}

// TestCheckVIP: the address must be on every master's subnet, held by no
// other machine, and answered for by nobody; a re-run finds it on a master
// through keepalived and goes on.
func TestCheckVIP(t *testing.T) {
	t.Parallel()
	opts := Options{Nodes: []string{"emei", "wudang"}, LBMode: lb.ModeVIP, VIP: "10.250.0.100"}
	for _, tt := range []struct {
		name   string
		vip    string
		mutate func(f *fixture)
		want   []string
	}{
		{name: "free", mutate: func(f *fixture) {
			f.fakes["shaolin"].Respond("timeout 2 bash -c", "10.250.0.100 dev eth0 FAILED\n", nil)
		}},
		{name: "another subnet", vip: "192.0.2.10", want: []string{"node shaolin: --vip 192.0.2.10 is not on its subnet 10.250.0.0/24 (eth0)"}},
		{name: "a machine answers for it", mutate: func(f *fixture) {
			f.fakes["shaolin"].Respond("timeout 2 bash -c", "10.250.0.100 dev eth0 lladdr 52:54:00:12:34:56 REACHABLE\n", nil)
		}, want: []string{"--vip 10.250.0.100 is in use: a machine answers for it", "lladdr 52:54:00:12:34:56"}},
		{name: "a holder's entry gone stale, probed again: free", mutate: func(f *fixture) {
			f.fakes["shaolin"].Respond("timeout 2 bash -c", "10.250.0.100 dev eth0 lladdr 52:54:00:12:34:56 DELAY\n", nil)
		}},
		{name: "a master's keepalived.conf is someone else's", mutate: func(f *fixture) {
			f.setProbe("wudang", func(p *probe) { p.nginx = "pm=apt-get\nforeign=/etc/keepalived/keepalived.conf\n" })
		}, want: []string{"node wudang: /etc/keepalived/keepalived.conf is not haadm's and haadm would replace it"}},
		{name: "a master holds it without keepalived", mutate: func(f *fixture) {
			f.setProbe("emei", func(p *probe) { p.addrs += "2: eth0    inet 10.250.0.100/24 scope global secondary eth0\n" })
		}, want: []string{"node emei holds --vip 10.250.0.100, but not through keepalived"}},
		{name: "re-run: a master holds it through keepalived", mutate: func(f *fixture) {
			f.setProbe("emei", func(p *probe) {
				p.addrs += "2: eth0    inet 10.250.0.100/24 scope global secondary eth0\n"
				p.nginxActive = "active\nactive\n"
			})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := opts
			if tt.vip != "" {
				o.VIP = tt.vip
			}
			f := newFixture(t, setup{Opts: o})
			f.useFakeEtcd(labVoters()...)
			if tt.mutate != nil {
				tt.mutate(f)
			}
			err := Preflight(testCtx(t, 30*time.Second), f.c)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("preflight passed")
			}
			mustContain(t, err.Error(), append([]string{"nothing was changed"}, tt.want...)...)
		})
	}
}

// TestEngineSwitchPreflight: the port held by haadm's own other engine is
// no obstacle (the lb phase swaps them); held by an operator's, it is.
func TestEngineSwitchPreflight(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, probe string
		ok          bool
	}{
		{"haadm's nginx holds the port", "pm=apt-get\nmanaged=nginx\n", true},
		{"an operator's nginx holds the port", "pm=apt-get\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBNode: "emei", LBEngine: lb.EngineHAProxy}})
			f.useFakeEtcd(labVoters()...)
			f.setProbe("emei", func(p *probe) { p.listen = ssListening(8443, "nginx"); p.nginx = tt.probe })
			err := Preflight(testCtx(t, 30*time.Second), f.c)
			if tt.ok && err != nil {
				t.Fatal(err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatal("preflight passed")
				}
				mustContain(t, err.Error(), "node emei: port 8443 is in use by another program")
			}
		})
	}
}

// TestEngineSwitchedIsLeftAlone: once haadm's old engine is stopped and
// disabled, a promote finds nothing to do on that node.
func TestEngineSwitchedIsLeftAlone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBNode: "emei", LBEngine: lb.EngineHAProxy}})
	f.useFakeEtcd(labVoters()...)
	want, err := lb.EngineHAProxy.Render(lbConfig(f.c))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := lb.EngineNginx.Render(lbConfig(f.c))
	f.setFile("emei", lb.EngineHAProxy.ConfPath(), want)
	f.setFile("emei", lb.EngineNginx.ConfPath(), old)
	f.fakes["emei"].Respond("systemctl is-active haproxy", "active\n", nil)
	f.fakes["emei"].Respond("systemctl is-active nginx; systemctl is-enabled nginx", "inactive\ndisabled\n", nil)
	step, err := planProxy(testCtx(t, 10*time.Second), f.c, "emei", lb.EngineHAProxy, want)
	if err != nil || step != nil {
		t.Fatalf("plan = %+v, %v; want nothing to do", step, err)
	}
	f.fakes["emei"].Respond("systemctl is-active nginx; systemctl is-enabled nginx", "inactive\nenabled\n", nil)
	step, err = planProxy(testCtx(t, 10*time.Second), f.c, "emei", lb.EngineHAProxy, want)
	if err != nil || step == nil || !strings.Contains(step.What, "in place of haadm's other proxy") {
		t.Fatalf("plan with nginx still enabled = %+v, %v", step, err)
	}
}
