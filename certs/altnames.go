package certs

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// altNames collects SANs in the order kubeadm adds them; done() then
// normalises them exactly like kubeadm's RemoveDuplicateAltNames.
type altNames struct {
	dns []string
	ips []net.IP
}

// add files a certSAN-style string as an IP or a DNS name. kubeadm tests for
// an IP first ("10.0.0.1" is also a valid DNS name) and its config
// validation refuses anything that is neither, so this returns an error
// instead of dropping the name.
func (a *altNames) add(san string) error {
	if ip := parseIPSloppy(san); ip != nil {
		a.ips = append(a.ips, ip)
		return nil
	}
	if isDNS1123Subdomain(san) || isWildcardDNS1123Subdomain(san) {
		a.dns = append(a.dns, san)
		return nil
	}
	return fmt.Errorf("SAN %q is neither an IP address nor a valid (wildcard) DNS name", san)
}

// done returns the DNS names sorted and unique, and the IPs unique in
// first-seen order: the shape kubeadm writes into its certificates.
func (a *altNames) done() ([]string, []net.IP) {
	var dns []string
	if len(a.dns) > 0 {
		dns = slices.Clone(a.dns)
		slices.Sort(dns)
		dns = slices.Compact(dns)
	}
	var ips []net.IP
	seen := map[string]bool{}
	for _, ip := range a.ips {
		ip = normalizeIP(ip)
		if ip == nil || seen[ip.String()] {
			continue
		}
		seen[ip.String()] = true
		ips = append(ips, ip)
	}
	return dns, ips
}

func normalizeIP(ip net.IP) net.IP {
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip.To16()
}

// parseIPSloppy accepts what kubeadm's netutils.ParseIPSloppy accepts:
// besides normal addresses, IPv4 with leading zeros ("010.0.0.1"), read as
// decimal. Go's parser refuses those since Go 1.17.
func parseIPSloppy(s string) net.IP {
	if ip := net.ParseIP(s); ip != nil {
		return ip
	}
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return nil
	}
	var b [4]byte
	for i, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return nil
		}
		n, err := strconv.Atoi(p)
		if err != nil || n > 255 {
			return nil
		}
		b[i] = byte(n)
	}
	return net.IPv4(b[0], b[1], b[2], b[3])
}

// isDNS1123Subdomain mirrors apimachinery's IsDNS1123Subdomain, which kubeadm
// uses to accept certSANs: lower-case alphanumeric labels with inner dashes,
// at most 253 characters in all (no per-label limit, like kubeadm).
func isDNS1123Subdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !isDNS1123Label(label) {
			return false
		}
	}
	return true
}

func isDNS1123Label(l string) bool {
	if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range l {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// isWildcardDNS1123Subdomain accepts "*." followed by a DNS-1123 subdomain.
func isWildcardDNS1123Subdomain(s string) bool {
	rest, ok := strings.CutPrefix(s, "*.")
	return ok && len(s) <= 253 && isDNS1123Subdomain(rest)
}
