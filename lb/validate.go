package lb

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// validate checks a config that already has its defaults.
func (c Config) validate() error {
	listen := net.ParseIP(c.ListenAddress)
	if listen == nil {
		return fmt.Errorf("listen address %q: want an IP address such as 0.0.0.0 or 127.0.0.1", c.ListenAddress)
	}
	if err := checkPort("listen port", c.ListenPort); err != nil {
		return err
	}
	if len(c.Backends) == 0 {
		return fmt.Errorf("no backends: the load balancer needs at least one kube-apiserver")
	}
	seenAddr := map[string]int{}
	seenName := map[string]int{}
	for i, b := range c.Backends {
		if err := b.validate(); err != nil {
			return fmt.Errorf("backend %d: %w", i, err)
		}
		key := b.key()
		if j, dup := seenAddr[key]; dup {
			return fmt.Errorf("backend %d (%s) duplicates backend %d: each apiserver must appear once or it gets twice the traffic", i, b.hostPort(), j)
		}
		seenAddr[key] = i
		if j, dup := seenName[b.name()]; dup {
			return fmt.Errorf("backend %d: name %q already used by backend %d", i, b.name(), j)
		}
		seenName[b.name()] = i
		if err := c.checkCollision(listen, b); err != nil {
			return fmt.Errorf("backend %d: %w", i, err)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"connect timeout", c.ConnectTimeout},
		{"proxy timeout", c.ProxyTimeout},
		{"fail timeout", c.FailTimeout},
		{"check interval", c.CheckInterval},
	} {
		if d.v < time.Millisecond {
			return fmt.Errorf("%s %v: want at least 1ms", d.name, d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"max fails", c.MaxFails}, {"rise", c.Rise}, {"fall", c.Fall}} {
		if n.v < 1 {
			return fmt.Errorf("%s %d: want at least 1", n.name, n.v)
		}
	}
	for _, p := range []struct{ name, v string }{
		{"pid file", c.PIDFile}, {"error log", c.ErrorLog}, {"nginx stream module", c.NginxStreamModule},
	} {
		if strings.ContainsAny(p.v, " \t\r\n;{}#\"'") {
			return fmt.Errorf("%s %q: spaces, quotes and ;{}# would break the configuration syntax", p.name, p.v)
		}
	}
	return nil
}

// checkCollision rejects a listener that would bind the very socket a
// backend apiserver is bound to: the proxy could not start, or would proxy
// to itself.
func (c Config) checkCollision(listen net.IP, b Backend) error {
	if c.ListenPort != b.Port {
		return nil
	}
	target := net.ParseIP(b.Address)
	switch {
	case target != nil && listen.Equal(target),
		target != nil && target.IsLoopback() && (listen.IsLoopback() || listen.IsUnspecified()),
		target == nil && strings.EqualFold(b.Address, "localhost") && (listen.IsLoopback() || listen.IsUnspecified()):
		return fmt.Errorf("listen %s is the backend's own address: the proxy and the apiserver cannot both bind it; use another listen port",
			net.JoinHostPort(c.ListenAddress, fmt.Sprint(c.ListenPort)))
	case listen.IsLoopback():
		// kube-apiserver binds every address (--bind-address=0.0.0.0) on a
		// control-plane node, so a loopback listener on its port fails there.
		return fmt.Errorf("listen %s uses the apiserver port %d: on a control-plane node kube-apiserver binds that port on every address, 127.0.0.1 included; the node-local mode must listen on another port (default %d)",
			net.JoinHostPort(c.ListenAddress, fmt.Sprint(c.ListenPort)), b.Port, DefaultNodeLocalPort)
	}
	return nil
}

func (b Backend) validate() error {
	if err := checkPort("port", b.Port); err != nil {
		return fmt.Errorf("%s: %w", b.Address, err)
	}
	if net.ParseIP(b.Address) == nil && !isHostName(b.Address) {
		return fmt.Errorf("address %q: want an IP address or a DNS host name", b.Address)
	}
	if !isIdentifier(b.name()) {
		return fmt.Errorf("name %q: use letters, digits and - _ . : only", b.Name)
	}
	return nil
}

func (b Backend) name() string {
	if b.Name == "" {
		return b.Address
	}
	return b.Name
}

func (b Backend) hostPort() string {
	return net.JoinHostPort(b.Address, fmt.Sprint(b.Port))
}

// key normalises the address so that 10.0.0.1 and 10.000.0.1, or two
// spellings of one IPv6 address, count as the same backend.
func (b Backend) key() string {
	if ip := net.ParseIP(b.Address); ip != nil {
		return net.JoinHostPort(ip.String(), fmt.Sprint(b.Port))
	}
	return net.JoinHostPort(strings.ToLower(b.Address), fmt.Sprint(b.Port))
}

func checkPort(what string, p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("%s %d: want 1-65535", what, p)
	}
	return nil
}

func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

// isIdentifier accepts what haproxy allows in a server name, which is also
// harmless inside an nginx comment.
func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r == ':' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
