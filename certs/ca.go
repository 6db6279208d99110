package certs

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
)

// CA is a certificate authority haadm signs with: the cluster's ca,
// etcd/ca or front-proxy-ca, copied from the first master.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// LoadCA parses a CA certificate and its key and checks that they belong
// together, so a mixed-up pair (e.g. etcd/ca.key next to ca.crt) fails here
// instead of minting certificates nobody trusts.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("certificate %q is not a CA", cert.Subject.CommonName)
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if err := checkKeyPair(cert, key); err != nil {
		return nil, fmt.Errorf("CA %q: %w", cert.Subject.CommonName, err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

func checkKeyPair(cert *x509.Certificate, key crypto.Signer) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return fmt.Errorf("cannot compare a public key of type %T", key.Public())
	}
	if !pub.Equal(cert.PublicKey) {
		return errors.New("private key does not match the certificate")
	}
	return nil
}
