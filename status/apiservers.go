package status

import (
	"context"
	"crypto/x509"
	"net"
	"sort"
	"time"

	"github.com/haadm/haadm/certs"
)

// probeAPIServer probes node's apiserver on the address it advertises,
// through the node itself when possible: an SSH problem is not an
// apiserver problem, so an unreachable node's apiserver is still probed
// through another node.
func probeAPIServer(ctx context.Context, in *Inputs, t *topology, node string) APIServer {
	row := APIServer{Node: node, CertSANs: []string{}, SANsMissing: []string{}}
	hp := t.apiserver[node]
	if hp == "" {
		row.Error = "no address known for its apiserver"
		return row
	}
	row.Address = "https://" + hp
	row.Via = in.via(node)
	if row.Via == "" {
		row.Error = "no node connected to probe through"
		return row
	}
	res := in.probe(ctx, row.Via, hp, true)
	row.Ready, row.Version = res.Ready, res.Version
	if res.Cert != nil {
		row.CertSANs = nonNil(certs.SANs(res.Cert))
		row.CertExpires = rfc3339(res.Cert.NotAfter)
		row.SANsMissing = nonNil(missingSANs(res.Cert, t.sansInUse(node)))
	}
	if res.Err != nil {
		row.Error = res.Err.Error()
	}
	return row
}

// missingSANs lists, as certs.SANs writes them, the names and addresses
// in use that cert does not cover.
func missingSANs(cert *x509.Certificate, inUse []string) []string {
	var spec certs.Spec
	for _, s := range inUse {
		if ip := net.ParseIP(s); ip != nil {
			spec.IPs = append(spec.IPs, ip)
		} else {
			spec.DNSNames = append(spec.DNSNames, s)
		}
	}
	return certs.Missing(cert, spec)
}

// via picks the node to open a connection from: the first of preferred
// that is connected, else any connected node (sorted, so the choice is
// stable). With a custom dialer every name is usable.
func (in *Inputs) via(preferred ...string) string {
	for _, p := range preferred {
		if _, ok := in.Hosts[p]; ok && p != "" {
			return p
		}
	}
	names := make([]string, 0, len(in.Hosts))
	for n := range in.Hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 0 {
		return names[0]
	}
	if in.Dial != nil && len(preferred) > 0 {
		return preferred[0]
	}
	return ""
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
