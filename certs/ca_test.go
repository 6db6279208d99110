package certs

import (
	"bytes"
	"encoding/pem"
	"strings"
	"testing"
)

func TestParseCertPEM(t *testing.T) {
	root := newTestCA(t, "kubernetes", ECDSAP256)
	leaf := issue(t, root, FrontProxyClient(), t0, DefaultValidity)
	keyPEM, err := EncodeKeyPEM(root.Key)
	if err != nil {
		t.Fatal(err)
	}
	// A key before the certificates and a chain after: the leaf wins.
	data := bytes.Join([][]byte{keyPEM, EncodeCertPEM(leaf), EncodeCertPEM(root.Cert)}, nil)
	got, err := ParseCertPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(leaf) {
		t.Errorf("got %q, want the leaf", got.Subject.CommonName)
	}
	for _, bad := range [][]byte{nil, keyPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}})} {
		if _, err := ParseCertPEM(bad); err == nil {
			t.Errorf("ParseCertPEM(%.30q): no error", bad)
		}
	}
}

func TestLoadCA(t *testing.T) {
	for _, alg := range []string{RSA2048, ECDSAP256} {
		t.Run(alg, func(t *testing.T) {
			ca := newTestCA(t, "etcd-ca", alg)
			keyPEM, err := EncodeKeyPEM(ca.Key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := LoadCA(EncodeCertPEM(ca.Cert), keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Cert.Equal(ca.Cert) || KeyAlgorithmOf(got.Key) != alg {
				t.Errorf("LoadCA returned %q with a %s key", got.Cert.Subject.CommonName, KeyAlgorithmOf(got.Key))
			}
		})
	}

	ca := newTestCA(t, "kubernetes", ECDSAP256)
	other := newTestCA(t, "etcd-ca", ECDSAP256)
	otherKey, err := EncodeKeyPEM(other.Key)
	if err != nil {
		t.Fatal(err)
	}
	leafKey := mustKey(t, ECDSAP256)
	leafCertPEM, err := Issue(ca, FrontProxyClient(), leafKey, t0, DefaultValidity)
	if err != nil {
		t.Fatal(err)
	}
	leafKeyPEM, err := EncodeKeyPEM(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name          string
		cert, key     []byte
		wantErrSubstr string
	}{
		{"key of another CA", EncodeCertPEM(ca.Cert), otherKey, "does not match"},
		{"leaf is not a CA", leafCertPEM, leafKeyPEM, "not a CA"},
		{"no certificate", otherKey, otherKey, "CA certificate"},
		{"no key", EncodeCertPEM(ca.Cert), EncodeCertPEM(ca.Cert), "CA key"},
	} {
		if _, err := LoadCA(tt.cert, tt.key); err == nil || !strings.Contains(err.Error(), tt.wantErrSubstr) {
			t.Errorf("%s: err = %v, want one mentioning %q", tt.name, err, tt.wantErrSubstr)
		}
	}
}
