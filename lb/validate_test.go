package lb

import (
	"strings"
	"testing"
	"time"
)

func TestValidationErrors(t *testing.T) {
	ok := func() Config { return Config{ListenAddress: "0.0.0.0", ListenPort: 6443, Backends: masters()} }
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no backends", func(c *Config) { c.Backends = nil }, "no backends"},
		{"listen port zero", func(c *Config) { c.ListenPort = 0 }, "listen port 0"},
		{"listen port too big", func(c *Config) { c.ListenPort = 65536 }, "listen port 65536"},
		{"listen host name", func(c *Config) { c.ListenAddress = "lb.example" }, "want an IP address"},
		{"listen empty", func(c *Config) { c.ListenAddress = "" }, "want an IP address"},
		{"backend port zero", func(c *Config) { c.Backends[1].Port = 0 }, "backend 1: 10.250.0.12: port 0"},
		{"backend port negative", func(c *Config) { c.Backends[2].Port = -1 }, "port -1"},
		{"backend bad address", func(c *Config) { c.Backends[0].Address = "10.0.0.1; include /x" }, "want an IP address or a DNS host name"},
		{"backend empty address", func(c *Config) { c.Backends[0].Address = "" }, "want an IP address or a DNS host name"},
		{"backend bad name", func(c *Config) { c.Backends[0].Name = "shao lin" }, `name "shao lin"`},
		{"duplicate backend", func(c *Config) { c.Backends[2] = Backend{Name: "again", Address: "10.250.0.11", Port: 6443} }, "backend 2 (10.250.0.11:6443) duplicates backend 0"},
		{"duplicate ipv6 spelled differently", func(c *Config) {
			c.Backends = []Backend{{Name: "a", Address: "fd00::1", Port: 6443}, {Name: "b", Address: "fd00:0:0::0001", Port: 6443}}
		}, "duplicates backend 0"},
		{"duplicate host name any case", func(c *Config) {
			c.Backends = []Backend{{Address: "emei.lab", Port: 6443}, {Address: "EMEI.lab", Port: 6443}}
		}, "duplicates backend 0"},
		{"duplicate name", func(c *Config) { c.Backends[1].Name = "shaolin" }, `name "shaolin" already used by backend 0`},
		{"listen on backend address", func(c *Config) { c.ListenAddress = "10.250.0.12" }, "backend 1: listen 10.250.0.12:6443 is the backend's own address"},
		{"loopback listen on apiserver port", func(c *Config) { c.ListenAddress = "127.0.0.1" }, "kube-apiserver binds that port on every address"},
		{"wildcard listen on loopback backend", func(c *Config) {
			c.Backends = []Backend{{Address: "127.0.0.1", Port: 6443}}
		}, "is the backend's own address"},
		{"loopback listen on localhost backend", func(c *Config) {
			c.ListenAddress = "127.0.0.1"
			c.Backends = []Backend{{Address: "localhost", Port: 6443}}
		}, "is the backend's own address"},
		{"negative timeout", func(c *Config) { c.ConnectTimeout = -time.Second }, "connect timeout -1s"},
		{"sub-millisecond timeout", func(c *Config) { c.ProxyTimeout = time.Microsecond }, "want at least 1ms"},
		{"negative rise", func(c *Config) { c.Rise = -1 }, "rise -1"},
		{"pid file with space", func(c *Config) { c.PIDFile = "/run/my nginx.pid" }, "pid file"},
		{"error log with semicolon", func(c *Config) { c.ErrorLog = "/x; user root" }, "error log"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok()
			tc.mutate(&cfg)
			for kind, render := range map[string]func(Config) ([]byte, error){"nginx": RenderNginx, "haproxy": RenderHAProxy} {
				out, err := render(cfg)
				if err == nil {
					t.Fatalf("%s: no error, rendered:\n%s", kind, out)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: error %q does not mention %q", kind, err, tc.want)
				}
			}
		})
	}
}

func TestValidationAccepts(t *testing.T) {
	cases := map[string]Config{
		// A dedicated load balancer host may well use the apiserver port.
		"wildcard listen on apiserver port": {ListenAddress: "0.0.0.0", ListenPort: 6443, Backends: masters()},
		"node-local":                        NodeLocal(masters()),
		"same address other port":           {ListenAddress: "10.250.0.11", ListenPort: 8443, Backends: masters()},
		"unnamed host name backend":         {ListenAddress: "::1", ListenPort: 6444, Backends: []Backend{{Address: "emei.lab.", Port: 6443}}},
	}
	for name, cfg := range cases {
		if _, err := RenderNginx(cfg); err != nil {
			t.Errorf("%s: nginx: %v", name, err)
		}
		if _, err := RenderHAProxy(cfg); err != nil {
			t.Errorf("%s: haproxy: %v", name, err)
		}
	}
}

func TestConfDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Second:         "2s",
		10 * time.Minute:        "10m",
		90 * time.Second:        "90s",
		2 * time.Hour:           "2h",
		1500 * time.Millisecond: "1500ms",
		time.Millisecond:        "1ms",
	} {
		if got := confDuration(d); got != want {
			t.Errorf("confDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
