package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/haadm/haadm/lb"
)

// problems lists what is wrong with c's values, each by its field path.
// Empty fields are fine: they leave the flag's default alone. Rules that
// tie fields together (--etc-hosts needs a named --endpoint) are checked
// on the merged flags and file, by phases.Options.Validate.
func (c *PromoteConfiguration) problems() []string {
	var out []string
	add := func(path, format string, a ...any) { out = append(out, path+": "+fmt.Sprintf(format, a...)) }
	seen := map[string]bool{}
	for i, n := range c.Nodes {
		path := fmt.Sprintf("nodes[%d]", i)
		if why := nodeName(n); why != "" {
			add(path, "%s", why)
		} else if seen[n] {
			add(path, "%s is listed twice", n)
		}
		seen[n] = true
	}
	if c.FirstMaster != "" {
		if why := nodeName(c.FirstMaster); why != "" {
			add("firstMaster", "%s", why)
		}
	}
	l := c.LoadBalancer
	if l.Mode != "" {
		if _, err := lb.ParseMode(l.Mode); err != nil {
			add("loadBalancer.mode", "%q is not a mode: %s", l.Mode, advice(err))
		}
	}
	if l.Engine != "" {
		if _, err := lb.ParseEngine(l.Engine); err != nil {
			add("loadBalancer.engine", "%q is not an engine: %s", l.Engine, advice(err))
		}
	}
	if l.Node != "" {
		if why := nodeName(l.Node); why != "" {
			add("loadBalancer.node", "%s", why)
		}
	}
	if l.Port != 0 && !isPort(l.Port) {
		add("loadBalancer.port", "%d is not a port (1-65535)", l.Port)
	}
	if l.VIP != "" && net.ParseIP(l.VIP) == nil {
		add("loadBalancer.vip", "%q is not an IP address", l.VIP)
	}
	if l.Endpoint != "" {
		if why := endpoint(l.Endpoint); why != "" {
			add("loadBalancer.endpoint", "%q %s", l.Endpoint, why)
		}
	}
	for i, s := range c.CertSANs {
		if net.ParseIP(s) == nil && !dnsName(strings.TrimPrefix(s, "*.")) {
			add(fmt.Sprintf("certSANs[%d]", i), "%q is neither an IP address nor a DNS name", s)
		}
	}
	if c.EtcHosts != "" && net.ParseIP(c.EtcHosts) == nil {
		add("etcHosts", "%q is not the IP address the endpoint's name must resolve to", c.EtcHosts)
	}
	if c.Backup.Keep < 0 {
		add("backup.keep", "%d: want how many of the newest backups to keep (originals are always kept)", c.Backup.Keep)
	}
	if c.Timeout != "" {
		if d, err := time.ParseDuration(c.Timeout); err != nil || d <= 0 {
			add("timeout", "%q is not how long to wait before giving up, such as 45m or 1h30m", c.Timeout)
		}
	}
	seen = map[string]bool{}
	for i, n := range c.SSH.Nodes {
		path := fmt.Sprintf("ssh.nodes[%d]", i)
		if why := nodeName(n.Name); why != "" {
			add(path+".name", "%s", why)
		} else if seen[n.Name] {
			add(path+".name", "%s has an entry already", n.Name)
		}
		seen[n.Name] = true
		if n.Port != 0 && !isPort(n.Port) {
			add(path+".port", "%d is not a port (1-65535)", n.Port)
		}
	}
	return out
}

// nodeName says why n cannot name a Kubernetes node, or "" when it can.
func nodeName(n string) string {
	if n == "" {
		return `"" is not a node name`
	}
	if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
		return fmt.Sprintf("%q is not a node name: %s", n, strings.Join(errs, "; "))
	}
	return ""
}

func isPort(p int) bool { return p >= 1 && p <= 65535 }

func dnsName(s string) bool { return len(validation.IsDNS1123Subdomain(strings.ToLower(s))) == 0 }

// endpoint says why ep is not HOST:PORT, or "" when it is.
func endpoint(ep string) string {
	h, p, err := net.SplitHostPort(ep)
	if err != nil {
		return "is not HOST:PORT"
	}
	if port, err := strconv.Atoi(p); err != nil || !isPort(port) {
		return fmt.Sprintf("has port %q, want 1-65535", p)
	}
	if net.ParseIP(h) == nil && !dnsName(h) {
		return fmt.Sprintf("has %q, neither an IP address nor a DNS name", h)
	}
	return ""
}

// advice is what lb's parse errors tell the user to use, without the flag
// they name: "--lb-mode \"x\": use external, ..." gives "use external, ...".
func advice(err error) string {
	_, after, ok := strings.Cut(err.Error(), ": ")
	if !ok {
		return err.Error()
	}
	return after
}
