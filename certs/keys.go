package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
)

// Key algorithms, spelled like kubeadm's ClusterConfiguration.encryptionAlgorithm.
const (
	RSA2048   = "RSA-2048"
	RSA3072   = "RSA-3072"
	RSA4096   = "RSA-4096"
	ECDSAP256 = "ECDSA-P256"
	ECDSAP384 = "ECDSA-P384"

	// DefaultKeyAlgorithm is what kubeadm uses when encryptionAlgorithm is unset.
	DefaultKeyAlgorithm = RSA2048
)

// NewKey generates a private key. An empty alg is refused rather than taken
// as the default: it would turn "could not tell the cluster's algorithm"
// (see KeyAlgorithmOf) into a silently different one.
func NewKey(alg string) (crypto.Signer, error) {
	switch alg {
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	}
	return nil, fmt.Errorf("unsupported key algorithm %q (want one of %s, %s, %s, %s, %s)",
		alg, RSA2048, RSA3072, RSA4096, ECDSAP256, ECDSAP384)
}

// KeyAlgorithmOf names the algorithm of a public key (or of a private key's
// public half) so new keys can match the ones the cluster already uses.
// Keys NewKey cannot make still get a name ("RSA-1024", "ED25519") so that
// NewKey's error says what was found; "" means the type is unknown.
func KeyAlgorithmOf(key crypto.PublicKey) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA-" + strings.ReplaceAll(k.Curve.Params().Name, "-", "")
	case ed25519.PublicKey:
		return "ED25519"
	case crypto.Signer:
		return KeyAlgorithmOf(k.Public())
	}
	return ""
}
