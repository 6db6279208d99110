package lb

import "fmt"

// ParseNginxBackends returns the backends ("host:port", in file order) of the
// kube_apiserver upstream of an nginx.conf, for status reports. It reads the
// directive structure rather than matching lines, so an operator's
// reformatting or extra server parameters do not hide a backend.
func ParseNginxBackends(conf []byte) ([]string, error) {
	up, err := findNginxUpstream(conf)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range up.children {
		if d.name == "server" {
			if len(d.args) == 0 {
				return nil, fmt.Errorf("nginx config: line %d: server without an address", d.line)
			}
			out = append(out, d.args[0])
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("nginx config: upstream %s has no server", UpstreamName)
	}
	return out, nil
}

// ParseNginxListen returns the listen address ("host:port") of the stream
// server that proxies to the kube_apiserver upstream.
func ParseNginxListen(conf []byte) (string, error) {
	root, err := parseNginx(conf)
	if err != nil {
		return "", err
	}
	for _, stream := range root.all("stream") {
		for _, srv := range stream.all("server") {
			if !srv.block {
				continue
			}
			pass := srv.first("proxy_pass")
			if pass == nil || len(pass.args) != 1 || pass.args[0] != UpstreamName {
				continue
			}
			listen := srv.first("listen")
			if listen == nil || len(listen.args) == 0 {
				return "", fmt.Errorf("nginx config: line %d: server proxying to %s has no listen", srv.line, UpstreamName)
			}
			return listen.args[0], nil
		}
	}
	return "", fmt.Errorf("nginx config: no stream server proxies to %s", UpstreamName)
}

func findNginxUpstream(conf []byte) (*directive, error) {
	root, err := parseNginx(conf)
	if err != nil {
		return nil, err
	}
	for _, stream := range root.all("stream") {
		for _, up := range stream.all("upstream") {
			if len(up.args) == 1 && up.args[0] == UpstreamName {
				return up, nil
			}
		}
	}
	return nil, fmt.Errorf("nginx config: no stream upstream %s (not written by haadm?)", UpstreamName)
}
