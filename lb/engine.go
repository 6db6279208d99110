package lb

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// Engines lists the proxies haadm runs, nginx (the default) first.
func Engines() []Engine { return []Engine{EngineNginx, EngineHAProxy} }

// ConfPath is the file haadm owns on a node running the engine: the whole
// main configuration, where Debian's packaged service reads it.
func (e Engine) ConfPath() string {
	if e == EngineHAProxy {
		return "/etc/haproxy/haproxy.cfg"
	}
	return "/etc/nginx/nginx.conf"
}

// Service is the systemd unit, and the binary, of the engine.
func (e Engine) Service() string { return string(e) }

// Render returns the engine's whole configuration for c.
func (e Engine) Render(c Config) ([]byte, error) {
	if e == EngineHAProxy {
		return RenderHAProxy(c)
	}
	return RenderNginx(c)
}

// CheckCommand is the shell command that makes the engine itself judge a
// staged configuration file, without touching the running one.
func (e Engine) CheckCommand(path string) string {
	if e == EngineHAProxy {
		return "haproxy -c -q -f " + path
	}
	return "nginx -t -q -c " + path
}

// Packages are the Debian packages that provide the engine: nginx needs its
// stream module, which Debian ships apart.
func (e Engine) Packages() []string {
	if e == EngineHAProxy {
		return []string{"haproxy"}
	}
	return []string{"nginx-light", "libnginx-mod-stream"}
}

// ParseBackends returns the apiservers ("host:port", in file order) of a
// configuration haadm wrote for the engine.
func (e Engine) ParseBackends(conf []byte) ([]string, error) {
	if e == EngineHAProxy {
		return ParseHAProxyBackends(conf)
	}
	return ParseNginxBackends(conf)
}

// ParseListen returns the listen address ("host:port") of a configuration
// haadm wrote for the engine.
func (e Engine) ParseListen(conf []byte) (string, error) {
	if e == EngineHAProxy {
		return ParseHAProxyListen(conf)
	}
	return ParseNginxListen(conf)
}

// haproxySections splits a haproxy.cfg into its sections ("frontend
// kube_apiserver" -> its lines, comments and blank lines dropped).
func haproxySections(conf []byte) map[string][][]string {
	out := map[string][][]string{}
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		// Section keywords start in column 0; their contents are indented.
		if line[0] != ' ' && line[0] != '\t' {
			cur = strings.Join(f, " ")
			out[cur] = nil
			continue
		}
		out[cur] = append(out[cur], f)
	}
	return out
}

// ParseHAProxyBackends returns the servers of the kube_apiserver backend.
func ParseHAProxyBackends(conf []byte) ([]string, error) {
	lines, ok := haproxySections(conf)["backend "+UpstreamName]
	if !ok {
		return nil, fmt.Errorf("haproxy config: no backend %s (not written by haadm?)", UpstreamName)
	}
	var out []string
	for _, f := range lines {
		// The unchecked backup twins are the same apiservers.
		if f[0] == "server" && !slices.Contains(f, "backup") {
			if len(f) < 3 {
				return nil, fmt.Errorf("haproxy config: server %v without an address", f[1:])
			}
			out = append(out, f[2])
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("haproxy config: backend %s has no server", UpstreamName)
	}
	return out, nil
}

// ParseHAProxyListen returns the bind address of the kube_apiserver frontend.
func ParseHAProxyListen(conf []byte) (string, error) {
	lines, ok := haproxySections(conf)["frontend "+UpstreamName]
	if !ok {
		return "", fmt.Errorf("haproxy config: no frontend %s (not written by haadm?)", UpstreamName)
	}
	for _, f := range lines {
		if f[0] == "bind" && len(f) > 1 {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("haproxy config: frontend %s has no bind", UpstreamName)
}
