package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"
)

// Validity kubeadm gives the certificates it signs, and how far it backdates
// them so that nodes with slightly skewed clocks accept them at once.
const (
	DefaultValidity = 365 * 24 * time.Hour
	Backdate        = 5 * time.Minute
)

// KubeadmWindow returns the notBefore and validity to pass to Issue for a
// certificate kubeadm would sign at now with certificateValidityPeriod
// validity: valid from now-5m until now+validity.
//
// kubeadm's kubeconfig client certificates are an exception: they start at
// the CA's NotBefore instead (pkiutil.NewSignedCert's default).
func KubeadmWindow(now time.Time, validity time.Duration) (notBefore time.Time, total time.Duration) {
	return now.Add(-Backdate), validity + Backdate
}

// Issue signs a certificate for spec and key's public half with ca, valid
// from notBefore for validity, and returns it PEM-encoded. It is a leaf
// certificate like every one kubeadm signs: a random serial in [1, 2^63-1),
// key usage digital signature + key encipherment (kubeadm sets both for
// every key type), basic constraints CA:FALSE, and the CA's subject key id
// as authority key id.
func Issue(ca *CA, spec Spec, key crypto.Signer, notBefore time.Time, validity time.Duration) ([]byte, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("issue: CA certificate and key are required")
	}
	if key == nil {
		return nil, errors.New("issue: key is required")
	}
	if spec.CommonName == "" {
		return nil, errors.New("issue: spec has no common name")
	}
	if len(spec.ExtKeyUsage) == 0 {
		return nil, fmt.Errorf("issue %s: spec has no extended key usage", spec.CommonName)
	}
	if validity <= 0 {
		return nil, fmt.Errorf("issue %s: validity %v is not positive", spec.CommonName, validity)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", spec.CommonName, err)
	}
	dns, ips := (&altNames{dns: spec.DNSNames, ips: spec.IPs}).done()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   spec.CommonName,
			Organization: spec.Organization,
		},
		DNSNames:              dns,
		IPAddresses:           ips,
		NotBefore:             notBefore.UTC(),
		NotAfter:              notBefore.Add(validity).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           spec.ExtKeyUsage,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", spec.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", spec.CommonName, err)
	}
	return EncodeCertPEM(cert), nil
}

// randomSerial draws uniformly from [1, MaxInt64) like kubeadm: 63 random
// bits, positive, never zero.
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(math.MaxInt64-1))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
