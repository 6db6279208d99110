package phases

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/haadm/haadm/lb"
)

// Validate checks what the operator typed, all of it and in one place,
// before anything is contacted: each problem says what to do.
func (o Options) Validate() error {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	seen := map[string]bool{}
	for _, n := range o.Nodes {
		switch {
		case n == "":
			add("--nodes has an empty name")
		case seen[n]:
			add("--nodes names %s twice", n)
		case len(validation.IsDNS1123Subdomain(n)) > 0:
			add("--nodes %q is not a node name: %s", n, strings.Join(validation.IsDNS1123Subdomain(n), "; "))
		}
		seen[n] = true
	}
	if o.LBMode != "" {
		if _, err := lb.ParseMode(string(o.LBMode)); err != nil {
			add("%v", err)
		}
	}
	switch {
	case o.LBMode == lb.ModeVIP && o.VIP == "":
		add("--lb-mode vip needs --vip ADDRESS: a free IPv4 address on the masters' subnet")
	case o.LBMode == lb.ModeVIP && (net.ParseIP(o.VIP) == nil || net.ParseIP(o.VIP).To4() == nil):
		add("--vip %q: want an IPv4 address (keepalived's VRRP here is IPv4 only)", o.VIP)
	case o.LBMode != lb.ModeVIP && o.VIP != "":
		add("--vip is only for --lb-mode vip")
	}
	if o.LBMode == lb.ModeVIP && o.Endpoint != "" && o.VIP != "" {
		if h, _, err := net.SplitHostPort(o.Endpoint); err == nil && net.ParseIP(h) != nil && h != o.VIP {
			add("--endpoint %s and --vip %s differ: with --lb-mode vip the endpoint is the virtual address (or a name for it)", o.Endpoint, o.VIP)
		}
	}
	if o.LBEngine != "" {
		if _, err := lb.ParseEngine(string(o.LBEngine)); err != nil {
			add("%v", err)
		}
	}
	if o.LBPort != 0 && (o.LBPort < 1 || o.LBPort > 65535) {
		add("--lb-port %d: want 1-65535", o.LBPort)
	}
	if o.Endpoint != "" {
		if err := checkEndpoint(o.Endpoint); err != nil {
			add("--endpoint %q: %v", o.Endpoint, err)
		}
	}
	for _, s := range o.CertSANs {
		if err := checkSAN(s); err != nil {
			add("--cert-sans %q: %v", s, err)
		}
	}
	if o.EtcHosts != "" {
		if net.ParseIP(o.EtcHosts) == nil {
			add("--etc-hosts %q: want the IP address the endpoint's name must resolve to", o.EtcHosts)
		}
		if h, _, err := net.SplitHostPort(o.Endpoint); err != nil || net.ParseIP(h) != nil {
			add("--etc-hosts needs --endpoint NAME:PORT with a host name, not an address")
		}
	}
	if o.KeepBackups < 0 {
		add("--keep-backups %d: want how many of the newest backups to keep (originals are always kept)", o.KeepBackups)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problem(s) with the options; nothing was changed:\n  - %s", len(problems), strings.Join(problems, "\n  - "))
	}
	return nil
}

// checkEndpoint accepts HOST:PORT with a DNS name or an IP address.
func checkEndpoint(ep string) error {
	h, p, err := net.SplitHostPort(ep)
	if err != nil {
		return fmt.Errorf("want HOST:PORT: %w", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return fmt.Errorf("bad port %q", p)
	}
	if net.ParseIP(h) == nil {
		if errs := validation.IsDNS1123Subdomain(strings.ToLower(h)); len(errs) > 0 {
			return fmt.Errorf("%q is neither an IP address nor a DNS name: %s", h, strings.Join(errs, "; "))
		}
	}
	return nil
}

// checkSAN accepts what a certificate can carry: an IP address or a DNS
// name, wildcards included.
func checkSAN(s string) error {
	if net.ParseIP(s) != nil {
		return nil
	}
	if errs := validation.IsWildcardDNS1123Subdomain(strings.ToLower(s)); strings.HasPrefix(s, "*.") && len(errs) == 0 {
		return nil
	}
	if errs := validation.IsDNS1123Subdomain(strings.ToLower(s)); len(errs) > 0 {
		return fmt.Errorf("neither an IP address nor a DNS name: %s", strings.Join(errs, "; "))
	}
	return nil
}
