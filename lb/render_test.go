package lb

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func masters() []Backend {
	return []Backend{
		{Name: "shaolin", Address: "10.250.0.11", Port: 6443},
		{Name: "emei", Address: "10.250.0.12", Port: 6443},
		{Name: "wudang", Address: "10.250.0.13", Port: 6443},
	}
}

func renderCases() []struct {
	name string
	cfg  Config
} {
	return []struct {
		name string
		cfg  Config
	}{
		{"dedicated", Config{ListenAddress: "0.0.0.0", ListenPort: 6443, Backends: masters()}},
		{"nodelocal", NodeLocal(masters())},
		{"single", NodeLocal(masters()[:1])},
		{"custom", Config{
			ListenAddress: "::", ListenPort: 8443,
			Backends: []Backend{
				{Name: "v6", Address: "fd00::11", Port: 6443},
				{Address: "emei.lab.example", Port: 6443},
				{Name: "wudang", Address: "10.250.0.13", Port: 16443},
			},
			PIDFile:           "/run/haadm-lb.pid",
			ErrorLog:          "stderr",
			NginxStreamModule: "/usr/lib/nginx/modules/ngx_stream_module.so",
			ConnectTimeout:    1500 * time.Millisecond,
			ProxyTimeout:      time.Hour,
			MaxFails:          1,
			FailTimeout:       30 * time.Second,
			CheckInterval:     5 * time.Second,
			Rise:              1,
			Fall:              2,
		}},
	}
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range renderCases() {
		t.Run(tc.name, func(t *testing.T) {
			ngx, err := RenderNginx(tc.cfg)
			if err != nil {
				t.Fatalf("RenderNginx: %v", err)
			}
			checkGolden(t, tc.name+".nginx.conf", ngx)
			hap, err := RenderHAProxy(tc.cfg)
			if err != nil {
				t.Fatalf("RenderHAProxy: %v", err)
			}
			checkGolden(t, tc.name+".haproxy.cfg", hap)

			again, _ := RenderNginx(tc.cfg)
			if string(again) != string(ngx) {
				t.Error("RenderNginx is not deterministic")
			}
		})
	}
}

func TestNodeLocal(t *testing.T) {
	in := masters()
	cfg := NodeLocal(in)
	if cfg.ListenAddress != "127.0.0.1" || cfg.ListenPort != 6444 {
		t.Errorf("listen %s:%d, want 127.0.0.1:6444", cfg.ListenAddress, cfg.ListenPort)
	}
	in[0].Address = "192.0.2.1"
	if cfg.Backends[0].Address != "10.250.0.11" {
		t.Error("NodeLocal shares the caller's backend slice")
	}
}

// TestRenderedConfigsPassSyntaxCheck runs the real proxies' syntax checks
// when they are installed (Debian: nginx + libnginx-mod-stream, haproxy).
func TestRenderedConfigsPassSyntaxCheck(t *testing.T) {
	for _, tc := range renderCases() {
		if tc.cfg.NginxStreamModule != "" {
			// Debian already loads the module; loading it twice is fatal.
			tc.cfg.NginxStreamModule = ""
		}
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := tc.cfg
			cfg.PIDFile = filepath.Join(dir, "lb.pid")
			cfg.ErrorLog = filepath.Join(dir, "error.log")
			t.Run("nginx", func(t *testing.T) {
				if _, err := exec.LookPath("nginx"); err != nil {
					t.Skip("nginx not installed")
				}
				if _, err := os.Stat("/etc/nginx/modules-enabled"); err != nil {
					t.Skip("no /etc/nginx/modules-enabled (not Debian's nginx)")
				}
				conf, err := RenderNginx(cfg)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, "nginx.conf")
				if err := os.WriteFile(path, conf, 0o644); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command("nginx", "-t", "-q", "-e", cfg.ErrorLog, "-c", path).CombinedOutput()
				// An unresolvable lab host name is not a syntax error.
				if err != nil && !strings.Contains(string(out), "host not found") {
					t.Errorf("nginx -t: %v\n%s\n%s", err, out, conf)
				}
			})
			t.Run("haproxy", func(t *testing.T) {
				if _, err := exec.LookPath("haproxy"); err != nil {
					t.Skip("haproxy not installed")
				}
				conf, err := RenderHAProxy(cfg)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, "haproxy.cfg")
				if err := os.WriteFile(path, conf, 0o644); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command("haproxy", "-c", "-f", path).CombinedOutput()
				if err != nil && !strings.Contains(string(out), "could not resolve address") {
					t.Errorf("haproxy -c: %v\n%s\n%s", err, out, conf)
				}
			})
		})
	}
}

// TestEngineReadBack: whichever engine wrote the file, remove and status
// read back exactly its listener and backends, every render case.
func TestEngineReadBack(t *testing.T) {
	for _, e := range Engines() {
		for _, tc := range renderCases() {
			t.Run(string(e)+"/"+tc.name, func(t *testing.T) {
				conf, err := e.Render(tc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				got, err := e.ParseBackends(conf)
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for _, b := range tc.cfg.Backends {
					want = append(want, b.hostPort())
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("backends = %q, want %q", got, want)
				}
				listen, err := e.ParseListen(conf)
				if err != nil {
					t.Fatal(err)
				}
				if want := (Backend{Address: tc.cfg.ListenAddress, Port: tc.cfg.ListenPort}).hostPort(); listen != want {
					t.Errorf("listen = %q, want %q", listen, want)
				}
			})
		}
	}
	if _, err := EngineHAProxy.ParseBackends([]byte("global\n    daemon\n")); err == nil || !strings.Contains(err.Error(), "not written by haadm") {
		t.Errorf("a foreign haproxy.cfg: err = %v", err)
	}
}

func vrrpCase() VRRP {
	return VRRP{Node: "emei", VIP: "10.250.0.100", PrefixLen: 24, Interface: "eth0", SourceIP: "10.250.0.12",
		Peers: []string{"10.250.0.11", "10.250.0.13"}, Priority: 149, RouterID: RouterIDFor("10.250.0.100"), Engine: EngineNginx}
}

func TestRenderKeepalived(t *testing.T) {
	conf, err := RenderKeepalived(vrrpCase())
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "vip.keepalived.conf", conf)
	checkGolden(t, "vip.haadm-check-proxy.sh", RenderKeepalivedCheck(EngineNginx))
	if vip, err := ParseKeepalivedVIP(conf); err != nil || vip != "10.250.0.100" {
		t.Errorf("ParseKeepalivedVIP = %q, %v", vip, err)
	}
	bad := []struct {
		edit func(*VRRP)
		want string
	}{
		{func(v *VRRP) { v.VIP = "fd00::1" }, "want an IPv4 address"},
		{func(v *VRRP) { v.VIP = v.SourceIP }, "is a master's own address"},
		{func(v *VRRP) { v.Interface = "eth0 {" }, "want a device name"},
		{func(v *VRRP) { v.Priority = 255 }, "priority 255"},
		{func(v *VRRP) { v.Peers = []string{"emei"} }, `address "emei"`},
	}
	for _, b := range bad {
		v := vrrpCase()
		b.edit(&v)
		if _, err := RenderKeepalived(v); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: err = %v, want %q", v, err, b.want)
		}
	}
}

// TestKeepalivedConfigTest has the real keepalived judge the file.
func TestKeepalivedConfigTest(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed (Debian: apt-get install keepalived)")
	}
	dir := t.TempDir()
	conf, err := RenderKeepalived(vrrpCase())
	if err != nil {
		t.Fatal(err)
	}
	// The check script must exist, root-owned and not writable by others,
	// or enable_script_security refuses it.
	script := filepath.Join(dir, "check.sh")
	if err := os.WriteFile(script, RenderKeepalivedCheck(EngineHAProxy), 0o700); err != nil {
		t.Fatal(err)
	}
	conf = []byte(strings.ReplaceAll(string(conf), KeepalivedCheck, script))
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("keepalived", "--config-test", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("keepalived --config-test: %v\n%s\n%s", err, out, conf)
	}
	// keepalived reports some mistakes as warnings and still exits 0.
	for _, w := range []string{"unknown keyword", "WARNING", "invalid"} {
		if strings.Contains(string(out), w) {
			t.Errorf("keepalived --config-test says %q:\n%s", w, out)
		}
	}
	if c := exec.Command("sh", script); c.Run() == nil {
		t.Error("the check passes with no haproxy running")
	}
}
