package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// PEM block types. kubeadm writes RSA keys as PKCS#1 and ECDSA keys as SEC 1
// (client-go's keyutil); PKCS#8 is read too because keys made by openssl or
// by an external CA often use it.
const (
	blockCertificate = "CERTIFICATE"
	blockRSAKey      = "RSA PRIVATE KEY"
	blockECKey       = "EC PRIVATE KEY"
	blockPKCS8Key    = "PRIVATE KEY"
)

// ParseCertPEM returns the first certificate in data. A file that holds a
// chain starts with the leaf, the way TLS sends it, so the first one is the
// certificate the file is named after.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no CERTIFICATE block in PEM data")
		}
		if block.Type != blockCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		return cert, nil
	}
}

// ParseKeyPEM returns the first private key in data: RSA (PKCS#1 or PKCS#8),
// ECDSA (SEC 1 or PKCS#8) or Ed25519 (PKCS#8).
func ParseKeyPEM(data []byte) (crypto.Signer, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no private key block in PEM data")
		}
		if strings.Contains(block.Type, "ENCRYPTED") || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, errors.New("encrypted private keys are not supported: kubeadm never writes them")
		}
		switch block.Type {
		case blockRSAKey:
			key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse RSA private key: %w", err)
			}
			return key, nil
		case blockECKey:
			key, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse EC private key: %w", err)
			}
			return key, nil
		case blockPKCS8Key:
			return parsePKCS8(block.Bytes)
		}
		// Anything else, e.g. the "EC PARAMETERS" block openssl writes
		// before an EC key, holds no key: look further.
	}
}

func parsePKCS8(der []byte) (crypto.Signer, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8 private key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		// X25519 (*ecdh.PrivateKey) parses but cannot sign a certificate.
		return nil, fmt.Errorf("PKCS#8 key of type %T cannot sign", key)
	}
}

// EncodeKeyPEM encodes key the way kubeadm writes it: "RSA PRIVATE KEY"
// (PKCS#1) for RSA, "EC PRIVATE KEY" (SEC 1) for ECDSA. Ed25519, which
// kubeadm cannot write, becomes PKCS#8, its only standard encoding.
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	var block pem.Block
	switch k := key.(type) {
	case *rsa.PrivateKey:
		block = pem.Block{Type: blockRSAKey, Bytes: x509.MarshalPKCS1PrivateKey(k)}
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("encode EC private key: %w", err)
		}
		block = pem.Block{Type: blockECKey, Bytes: der}
	case ed25519.PrivateKey:
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("encode Ed25519 private key: %w", err)
		}
		block = pem.Block{Type: blockPKCS8Key, Bytes: der}
	default:
		return nil, fmt.Errorf("cannot encode private key of type %T", key)
	}
	return pem.EncodeToMemory(&block), nil
}

// EncodeCertPEM encodes cert as a single CERTIFICATE block, as kubeadm does.
func EncodeCertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: blockCertificate, Bytes: cert.Raw})
}
