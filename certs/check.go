package certs

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SANs lists the certificate's subject alternative names the way openssl
// prints them ("DNS:kubernetes", "IP:10.96.0.1"), sorted, for status output
// and error messages.
func SANs(cert *x509.Certificate) []string {
	var out []string
	for _, d := range cert.DNSNames {
		out = append(out, "DNS:"+d)
	}
	for _, ip := range cert.IPAddresses {
		out = append(out, "IP:"+ip.String())
	}
	for _, u := range cert.URIs {
		out = append(out, "URI:"+u.String())
	}
	for _, e := range cert.EmailAddresses {
		out = append(out, "email:"+e)
	}
	slices.Sort(out)
	return out
}

// Missing lists, in the format of SANs, the SANs of spec that cert lacks.
// Extra SANs in cert are fine: a name nobody uses hurts no one, while a
// missing one fails TLS ("certificate is valid for A, not B").
func Missing(cert *x509.Certificate, spec Spec) []string {
	var out []string
	for _, d := range spec.DNSNames {
		if !slices.ContainsFunc(cert.DNSNames, func(c string) bool { return strings.EqualFold(c, d) }) {
			out = append(out, "DNS:"+d)
		}
	}
	for _, ip := range spec.IPs {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			out = append(out, "IP:"+ip.String())
		}
	}
	return out
}

// Matches tells whether cert can stay as it is: signed by ca, with spec's
// subject, SANs and extended key usages, and valid from now until at least
// now+margin. When it cannot, err says every reason, for `haadm status`;
// ok is never true with an error.
func Matches(cert *x509.Certificate, spec Spec, ca *x509.Certificate, now time.Time, margin time.Duration) (ok bool, err error) {
	var why []string
	if ca == nil {
		why = append(why, "no CA to check the signature against")
	} else if !bytes.Equal(cert.RawIssuer, ca.RawSubject) {
		why = append(why, fmt.Sprintf("issued by %q, not by CA %q", cert.Issuer.CommonName, ca.Subject.CommonName))
	} else if err := cert.CheckSignatureFrom(ca); err != nil {
		why = append(why, fmt.Sprintf("not signed by CA %q: %v", ca.Subject.CommonName, err))
	}
	if cert.Subject.CommonName != spec.CommonName {
		why = append(why, fmt.Sprintf("common name is %q, want %q", cert.Subject.CommonName, spec.CommonName))
	}
	if !sameSet(cert.Subject.Organization, spec.Organization) {
		why = append(why, fmt.Sprintf("organization is %q, want %q", cert.Subject.Organization, spec.Organization))
	}
	if missing := Missing(cert, spec); len(missing) > 0 {
		why = append(why, "missing SANs "+strings.Join(missing, ", "))
	}
	for _, u := range spec.ExtKeyUsage {
		if !slices.Contains(cert.ExtKeyUsage, u) {
			why = append(why, fmt.Sprintf("missing extended key usage %s", extKeyUsageName(u)))
		}
	}
	if now.Before(cert.NotBefore) {
		why = append(why, fmt.Sprintf("not valid before %s", cert.NotBefore.UTC().Format(time.RFC3339)))
	}
	if !now.Add(margin).Before(cert.NotAfter) {
		why = append(why, fmt.Sprintf("expires %s, within %v", cert.NotAfter.UTC().Format(time.RFC3339), margin))
	}
	if len(why) > 0 {
		return false, errors.New(strings.Join(why, "; "))
	}
	return true, nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func extKeyUsageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "server auth"
	case x509.ExtKeyUsageClientAuth:
		return "client auth"
	}
	return fmt.Sprintf("#%d", u)
}
