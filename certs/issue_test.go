package certs

import (
	"bytes"
	"crypto/x509"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIssueVerifiesAgainstCA(t *testing.T) {
	apiserver, err := APIServer(emei, lab)
	if err != nil {
		t.Fatal(err)
	}
	etcdServer, err := EtcdServer(emei)
	if err != nil {
		t.Fatal(err)
	}
	etcdPeer, err := EtcdPeer(emei)
	if err != nil {
		t.Fatal(err)
	}
	specs := []Spec{apiserver, etcdServer, etcdPeer, APIServerKubeletClient(), FrontProxyClient(),
		APIServerEtcdClient(), EtcdHealthcheckClient(), Admin(), ControllerManager(), Scheduler()}

	for _, tt := range []struct{ caAlg, keyAlg string }{{RSA2048, RSA2048}, {ECDSAP256, ECDSAP256}, {RSA2048, ECDSAP256}} {
		ca := newTestCA(t, "kubernetes", tt.caAlg)
		roots := x509.NewCertPool()
		roots.AddCert(ca.Cert)
		key := mustKey(t, tt.keyAlg)
		notBefore, validity := KubeadmWindow(t0, DefaultValidity)
		for _, spec := range specs {
			t.Run(tt.caAlg+" CA/"+tt.keyAlg+" key/"+spec.CommonName, func(t *testing.T) {
				certPEM, err := Issue(ca, spec, key, notBefore, validity)
				if err != nil {
					t.Fatal(err)
				}
				cert, err := ParseCertPEM(certPEM)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0, KeyUsages: spec.ExtKeyUsage}); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				checkSpec(t, SpecOf(cert), spec)
				if err := checkKeyPair(cert, key); err != nil {
					t.Error(err)
				}
				if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; cert.KeyUsage != want {
					t.Errorf("KeyUsage = %b, want %b", cert.KeyUsage, want)
				}
				if !cert.BasicConstraintsValid || cert.IsCA {
					t.Errorf("basic constraints valid=%v CA=%v, want a valid CA:FALSE", cert.BasicConstraintsValid, cert.IsCA)
				}
				if !bytes.Equal(cert.AuthorityKeyId, ca.Cert.SubjectKeyId) || len(cert.AuthorityKeyId) == 0 {
					t.Errorf("AuthorityKeyId %x, want the CA's %x", cert.AuthorityKeyId, ca.Cert.SubjectKeyId)
				}
				if len(cert.SubjectKeyId) != 0 {
					t.Errorf("leaf has a SubjectKeyId; kubeadm's leaves have none")
				}
				if !cert.NotBefore.Equal(t0.Add(-5*time.Minute)) || !cert.NotAfter.Equal(t0.Add(365*24*time.Hour)) {
					t.Errorf("valid %s to %s", cert.NotBefore, cert.NotAfter)
				}
				if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.Cmp(new(big.Int).Lsh(big.NewInt(1), 63)) >= 0 {
					t.Errorf("serial %v outside [1, 2^63)", cert.SerialNumber)
				}
			})
		}
	}
}

func TestIssuedAPIServerServesItsNames(t *testing.T) {
	ca := newTestCA(t, "kubernetes", ECDSAP256)
	spec, err := APIServer(emei, lab)
	if err != nil {
		t.Fatal(err)
	}
	cert := issue(t, ca, spec, t0, time.Hour)
	for _, host := range []string{"k8s-api.lab", "emei", "kubernetes.default.svc.cluster.local", "10.96.0.1", "10.250.0.12", "10.250.0.100", "x.k8s.example.com"} {
		if err := cert.VerifyHostname(host); err != nil {
			t.Errorf("VerifyHostname(%s): %v", host, err)
		}
	}
	if err := cert.VerifyHostname("10.250.0.11"); err == nil {
		t.Error("emei's certificate is valid for shaolin's address")
	}
}

func TestIssueSerialsDiffer(t *testing.T) {
	ca := newTestCA(t, "kubernetes", ECDSAP256)
	seen := map[string]bool{}
	for range 20 {
		serial := issue(t, ca, Admin(), t0, time.Hour).SerialNumber.String()
		if seen[serial] {
			t.Fatalf("serial %s issued twice", serial)
		}
		seen[serial] = true
	}
}

func TestIssueNormalisesSANs(t *testing.T) {
	ca := newTestCA(t, "kubernetes", ECDSAP256)
	spec := Spec{CommonName: "x", DNSNames: []string{"b", "a", "b"}, IPs: ips("10.0.0.2", "10.0.0.1", "10.0.0.2"), ExtKeyUsage: serverAuth}
	cert := issue(t, ca, spec, t0, time.Hour)
	if !slices.Equal(cert.DNSNames, []string{"a", "b"}) || !slices.Equal(ipStrings(cert.IPAddresses), []string{"10.0.0.2", "10.0.0.1"}) {
		t.Errorf("SANs %v %v", cert.DNSNames, cert.IPAddresses)
	}
}

func TestIssueErrors(t *testing.T) {
	ca := newTestCA(t, "kubernetes", ECDSAP256)
	key := mustKey(t, ECDSAP256)
	for _, tt := range []struct {
		name     string
		ca       *CA
		spec     Spec
		noKey    bool
		validity time.Duration
		want     string
	}{
		{"no CA", nil, Admin(), false, time.Hour, "CA certificate and key"},
		{"CA without key", &CA{Cert: ca.Cert}, Admin(), false, time.Hour, "CA certificate and key"},
		{"no key", ca, Admin(), true, time.Hour, "key is required"},
		{"no CN", ca, Spec{ExtKeyUsage: clientAuth}, false, time.Hour, "common name"},
		{"no usage", ca, Spec{CommonName: "x"}, false, time.Hour, "extended key usage"},
		{"no validity", ca, Admin(), false, 0, "not positive"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.noKey {
				_, err = Issue(tt.ca, tt.spec, nil, t0, tt.validity)
			} else {
				_, err = Issue(tt.ca, tt.spec, key, t0, tt.validity)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestKubeadmWindow(t *testing.T) {
	nb, d := KubeadmWindow(t0, 90*24*time.Hour)
	if !nb.Equal(t0.Add(-5*time.Minute)) || !nb.Add(d).Equal(t0.Add(90*24*time.Hour)) {
		t.Errorf("KubeadmWindow = %s + %s", nb, d)
	}
}
