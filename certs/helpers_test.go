package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"slices"
	"testing"
	"time"
)

// t0 is the fixed "now" of the tests; nothing here reads the clock.
var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

func mustKey(t *testing.T, alg string) crypto.Signer {
	t.Helper()
	key, err := NewKey(alg)
	if err != nil {
		t.Fatalf("NewKey(%q): %v", alg, err)
	}
	return key
}

// newTestCA makes a self-signed CA the way kubeadm's NewSelfSignedCACert
// does; the package itself never creates CAs (haadm copies the cluster's).
func newTestCA(t *testing.T, cn, alg string) *CA {
	t.Helper()
	key := mustKey(t, alg)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		DNSNames:              []string{cn},
		NotBefore:             t0.Add(-time.Hour),
		NotAfter:              t0.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key}
}

// issue signs spec with a fresh ECDSA key and parses the result.
func issue(t *testing.T, ca *CA, spec Spec, notBefore time.Time, validity time.Duration) *x509.Certificate {
	t.Helper()
	certPEM, err := Issue(ca, spec, mustKey(t, ECDSAP256), notBefore, validity)
	if err != nil {
		t.Fatalf("Issue(%s): %v", spec.CommonName, err)
	}
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func ipStrings(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

func ips(s ...string) []net.IP {
	var out []net.IP
	for _, a := range s {
		ip := net.ParseIP(a)
		if ip == nil {
			panic("bad test IP " + a)
		}
		out = append(out, ip)
	}
	return out
}

// checkSpec compares every field, order included: kubeadm's order is part
// of what "the same certificate" means.
func checkSpec(t *testing.T, got, want Spec) {
	t.Helper()
	if got.CommonName != want.CommonName {
		t.Errorf("CommonName = %q, want %q", got.CommonName, want.CommonName)
	}
	if !slices.Equal(got.Organization, want.Organization) {
		t.Errorf("Organization = %q, want %q", got.Organization, want.Organization)
	}
	if !slices.Equal(got.DNSNames, want.DNSNames) {
		t.Errorf("DNSNames = %q, want %q", got.DNSNames, want.DNSNames)
	}
	if !slices.Equal(ipStrings(got.IPs), ipStrings(want.IPs)) {
		t.Errorf("IPs = %q, want %q", ipStrings(got.IPs), ipStrings(want.IPs))
	}
	if !slices.Equal(got.ExtKeyUsage, want.ExtKeyUsage) {
		t.Errorf("ExtKeyUsage = %v, want %v", got.ExtKeyUsage, want.ExtKeyUsage)
	}
}
