package manifests

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Node is the control-plane node a manifest is made for.
type Node struct {
	// Name is the Kubernetes node name, also used as the etcd member name.
	Name string
	// IP is the node's advertise address.
	IP string
}

// Member is one etcd member as listed in --initial-cluster.
type Member struct {
	Name    string
	PeerURL string
}

func (n Node) validate() error {
	if errs := validation.IsDNS1123Subdomain(n.Name); len(errs) > 0 {
		return fmt.Errorf("node name %q: %s", n.Name, strings.Join(errs, "; "))
	}
	if net.ParseIP(n.IP) == nil {
		return fmt.Errorf("node %s: IP %q is not an IP address", n.Name, n.IP)
	}
	return nil
}

// loopback returns the loopback address of ip's family, as kubeadm picks it
// for etcd's local listener.
func loopback(ip string) string {
	if p := net.ParseIP(ip); p != nil && p.To4() == nil {
		return "::1"
	}
	return "127.0.0.1"
}

func sameIP(a, b string) bool {
	x, y := net.ParseIP(a), net.ParseIP(b)
	return x != nil && y != nil && x.Equal(y)
}

// endpoint is the scheme and port of a URL flag, kept when the host changes.
type endpoint struct {
	scheme string
	port   string
}

// firstEndpoint reads the scheme and port of the first URL of a
// comma-separated URL list, falling back to def when the flag is absent.
func firstEndpoint(list string, def endpoint) (endpoint, string, error) {
	first, _, _ := strings.Cut(list, ",")
	if first == "" {
		return def, "", nil
	}
	u, err := url.Parse(first)
	if err != nil {
		return endpoint{}, "", err
	}
	if u.Scheme == "" || u.Port() == "" {
		return endpoint{}, "", fmt.Errorf("URL %q: want scheme://host:port", first)
	}
	return endpoint{scheme: u.Scheme, port: u.Port()}, u.Hostname(), nil
}

func (e endpoint) url(host string) string {
	return e.scheme + "://" + net.JoinHostPort(host, e.port)
}

// replaceHost rewrites, in a comma-separated URL list, every URL whose host
// is the IP from to the IP to, keeping scheme, port and path; other URLs
// (loopback, wildcard) are node-agnostic and stay as they are.
func replaceHost(list, from, to string) (string, error) {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		u, err := url.Parse(p)
		if err != nil {
			return "", err
		}
		if !sameIP(u.Hostname(), from) {
			continue
		}
		if port := u.Port(); port != "" {
			u.Host = net.JoinHostPort(to, port)
		} else if strings.Contains(to, ":") {
			u.Host = "[" + to + "]"
		} else {
			u.Host = to
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ","), nil
}
