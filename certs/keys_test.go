package certs

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func TestKeyAlgorithmRoundTrip(t *testing.T) {
	for _, tt := range []struct{ alg, block string }{
		{RSA2048, "RSA PRIVATE KEY"},
		{RSA3072, "RSA PRIVATE KEY"},
		{RSA4096, "RSA PRIVATE KEY"},
		{ECDSAP256, "EC PRIVATE KEY"},
		{ECDSAP384, "EC PRIVATE KEY"},
	} {
		t.Run(tt.alg, func(t *testing.T) {
			key := mustKey(t, tt.alg)
			if got := KeyAlgorithmOf(key.Public()); got != tt.alg {
				t.Errorf("KeyAlgorithmOf(public) = %q", got)
			}
			if got := KeyAlgorithmOf(key); got != tt.alg {
				t.Errorf("KeyAlgorithmOf(private) = %q", got)
			}
			keyPEM, err := EncodeKeyPEM(key)
			if err != nil {
				t.Fatal(err)
			}
			if block, _ := pem.Decode(keyPEM); block == nil || block.Type != tt.block {
				t.Fatalf("PEM block %v, want %q", block, tt.block)
			}
			back, err := ParseKeyPEM(keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkKeyPair(&x509.Certificate{PublicKey: key.Public()}, back); err != nil {
				t.Error(err)
			}
			if got := KeyAlgorithmOf(back.Public()); got != tt.alg {
				t.Errorf("after round trip: %q", got)
			}
		})
	}
}

func TestKeyAlgorithmOfOthers(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key  any
		want string
	}{{small, "RSA-1024"}, {p224, "ECDSA-P224"}, {pub, "ED25519"}, {"not a key", ""}} {
		if got := KeyAlgorithmOf(tt.key); got != tt.want {
			t.Errorf("KeyAlgorithmOf(%T) = %q, want %q", tt.key, got, tt.want)
		}
		// Whatever was found, NewKey must refuse what it cannot make.
		if _, err := NewKey(KeyAlgorithmOf(tt.key)); err == nil {
			t.Errorf("NewKey(%q) made a key", tt.want)
		}
	}
}

func TestNewKeyRejects(t *testing.T) {
	for _, alg := range []string{"", "rsa-2048", "RSA-1024", "ED25519"} {
		if _, err := NewKey(alg); err == nil || !strings.Contains(err.Error(), "unsupported key algorithm") {
			t.Errorf("NewKey(%q): err = %v", alg, err)
		}
	}
}

func TestParseKeyPEMFormats(t *testing.T) {
	rsaKey := mustKey(t, RSA2048)
	ecKey := mustKey(t, ECDSAP256)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	ecPEM, err := EncodeKeyPEM(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	edPEM, err := EncodeKeyPEM(edKey)
	if err != nil {
		t.Fatal(err)
	}
	// openssl ecparam -genkey writes the curve before the key.
	withParams := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}), ecPEM...)
	for _, tt := range []struct {
		name string
		data []byte
		want any
	}{
		{"RSA PKCS#8", pkcs8(rsaKey), rsaKey.Public()},
		{"ECDSA PKCS#8", pkcs8(ecKey), ecKey.Public()},
		{"Ed25519 PKCS#8", pkcs8(edKey), edKey.Public()},
		{"Ed25519 as encoded here", edPEM, edKey.Public()},
		{"EC PARAMETERS first", withParams, ecKey.Public()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParseKeyPEM(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkKeyPair(&x509.Certificate{PublicKey: tt.want}, key); err != nil {
				t.Error(err)
			}
		})
	}
	for _, tt := range []struct{ name, data, want string }{
		{"empty", "", "no private key"},
		{"certificate only", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})), "no private key"},
		{"encrypted PKCS#8", string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})), "encrypted"},
		{"legacy encrypted", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}})), "encrypted"},
		{"garbage RSA", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}})), "parse RSA"},
		{"garbage EC", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}})), "parse EC"},
		{"garbage PKCS#8", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})), "PKCS#8"},
	} {
		if _, err := ParseKeyPEM([]byte(tt.data)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
	if _, err := EncodeKeyPEM(nil); err == nil {
		t.Error("EncodeKeyPEM(nil): no error")
	}
}
