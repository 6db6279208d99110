package lb

import "fmt"

// Mode is a load-balancer layout.
type Mode string

const (
	// ModeExternal is nginx on one node the operator chooses, as the seed's
	// setup had it; the endpoint is that node's address.
	ModeExternal Mode = "external"
	// ModeNodeLocal is nginx on 127.0.0.1 of every node (kubespray's localhost
	// mode): no single load balancer can fail, but outside clients get no
	// stable address.
	ModeNodeLocal Mode = "node-local"
	// ModeVIP is a virtual IP that keepalived (VRRP) moves between the
	// masters, each running the proxy on it: outside clients get one stable
	// address and no single machine can take it down.
	ModeVIP Mode = "vip"
	// ModeNone is a load balancer the operator runs; haadm only checks that it
	// answers at the endpoint.
	ModeNone Mode = "none"
)

// Modes lists the layouts, for help texts.
func Modes() []Mode { return []Mode{ModeExternal, ModeNodeLocal, ModeVIP, ModeNone} }

// ParseMode accepts a layout's name.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes() {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("--lb-mode %q: use external, node-local, vip or none", s)
}

// DefaultPort is the port haadm's nginx listens on in mode m: not 6443,
// which a master's own apiserver holds.
func (m Mode) DefaultPort() int {
	if m == ModeNodeLocal {
		return DefaultNodeLocalPort
	}
	return 8443
}

// RunsNginx reports whether haadm runs the load balancer itself.
func (m Mode) RunsNginx() bool { return m == ModeExternal || m == ModeNodeLocal || m == ModeVIP }

// Engine is the layer-4 proxy haadm runs.
type Engine string

const (
	// EngineNginx is nginx's stream module, as the seed's setup had it.
	EngineNginx Engine = "nginx"
	// EngineHAProxy checks every apiserver's /readyz actively.
	EngineHAProxy Engine = "haproxy"
)

// ParseEngine accepts an engine's name.
func ParseEngine(s string) (Engine, error) {
	switch Engine(s) {
	case EngineNginx, EngineHAProxy:
		return Engine(s), nil
	}
	return "", fmt.Errorf("--lb-engine %q: use nginx or haproxy", s)
}
