package certs

import (
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSANs(t *testing.T) {
	ca := newTestCA(t, "kubernetes", ECDSAP256)
	spec, err := EtcdServer(emei)
	if err != nil {
		t.Fatal(err)
	}
	got := SANs(issue(t, ca, spec, t0, time.Hour))
	want := []string{"DNS:emei", "DNS:localhost", "IP:10.250.0.12", "IP:127.0.0.1", "IP:::1"}
	if !slices.Equal(got, want) {
		t.Errorf("SANs = %q, want %q", got, want)
	}
	if got := SANs(issue(t, ca, Admin(), t0, time.Hour)); len(got) != 0 {
		t.Errorf("client certificate SANs = %q", got)
	}
}

func TestMissing(t *testing.T) {
	ca := newTestCA(t, "kubernetes", ECDSAP256)
	// What the first master had before the LB existed.
	before, err := APIServer(emei, ClusterFacts{})
	if err != nil {
		t.Fatal(err)
	}
	cert := issue(t, ca, before, t0, time.Hour)
	after, err := APIServer(emei, lab)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"DNS:*.k8s.example.com", "DNS:api.example.com", "DNS:k8s-api.lab", "IP:10.250.0.100"}
	if got := Missing(cert, after); !slices.Equal(got, want) {
		t.Errorf("Missing = %q, want %q", got, want)
	}
	if got := Missing(cert, before); len(got) != 0 {
		t.Errorf("Missing(own spec) = %q", got)
	}
	// DNS is case-insensitive; an IPv4 address may come in 16-byte form.
	loose := Spec{DNSNames: []string{"EMEI"}, IPs: ips("10.250.0.12")}
	if got := Missing(cert, loose); len(got) != 0 {
		t.Errorf("Missing(case and IP form) = %q", got)
	}
	// More SANs in the certificate than asked for are fine.
	if got := Missing(issue(t, ca, after, t0, time.Hour), before); len(got) != 0 {
		t.Errorf("Missing(subset) = %q", got)
	}
}

func TestMatches(t *testing.T) {
	ca := newTestCA(t, "kubernetes", ECDSAP256)
	// Same name, different key: what a re-initialised cluster's CA looks like.
	impostor := newTestCA(t, "kubernetes", ECDSAP256)
	etcdCA := newTestCA(t, "etcd-ca", ECDSAP256)
	spec, err := APIServer(emei, lab)
	if err != nil {
		t.Fatal(err)
	}
	notBefore, validity := KubeadmWindow(t0, DefaultValidity)
	good := issue(t, ca, spec, notBefore, validity)
	expires := good.NotAfter
	oldSpec, err := APIServer(emei, ClusterFacts{})
	if err != nil {
		t.Fatal(err)
	}
	noLB := issue(t, ca, oldSpec, notBefore, validity)
	clientOnly := spec
	clientOnly.ExtKeyUsage = clientAuth
	wrongUsage := issue(t, ca, clientOnly, notBefore, validity)
	admin := issue(t, ca, Admin(), notBefore, validity)
	masters := Admin()
	masters.Organization = []string{"system:masters"}

	for _, tt := range []struct {
		name    string
		cert    *x509.Certificate
		spec    Spec
		ca      *CA
		now     time.Time
		margin  time.Duration
		wantErr string // "" means it matches
	}{
		{"fresh", good, spec, ca, t0, 30 * 24 * time.Hour, ""},
		{"right at the margin", good, spec, ca, expires.Add(-time.Hour - time.Second), time.Hour, ""},
		{"expiring within margin", good, spec, ca, expires.Add(-29 * 24 * time.Hour), 30 * 24 * time.Hour, "expires"},
		{"expired", good, spec, ca, expires.Add(time.Second), 0, "expires"},
		{"not yet valid", good, spec, ca, notBefore.Add(-time.Second), 0, "not valid before"},
		{"other CA", good, spec, etcdCA, t0, 0, "issued by"},
		{"same-named CA, other key", good, spec, impostor, t0, 0, "not signed by"},
		{"no CA", good, spec, nil, t0, 0, "no CA"},
		{"SANs missing", noLB, spec, ca, t0, 0, "missing SANs DNS:*.k8s.example.com, DNS:api.example.com, DNS:k8s-api.lab, IP:10.250.0.100"},
		{"wrong CN", good, etcdPeerSpec(t), ca, t0, 0, `common name is "kube-apiserver", want "emei"`},
		{"wrong usage", wrongUsage, spec, ca, t0, 0, "missing extended key usage server auth"},
		{"right O", admin, Admin(), ca, t0, 0, ""},
		{"wrong O", admin, masters, ca, t0, 0, "organization"},
		{"O missing", issue(t, ca, Spec{CommonName: AdminCN, ExtKeyUsage: clientAuth}, notBefore, validity), Admin(), ca, t0, 0, "organization"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var caCert *x509.Certificate
			if tt.ca != nil {
				caCert = tt.ca.Cert
			}
			ok, err := Matches(tt.cert, tt.spec, caCert, tt.now, tt.margin)
			if tt.wantErr == "" {
				if !ok || err != nil {
					t.Fatalf("Matches = %v, %v; want true", ok, err)
				}
				return
			}
			if ok || err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Matches = %v, %v; want false with %q", ok, err, tt.wantErr)
			}
		})
	}
}

func TestMatchesListsEveryReason(t *testing.T) {
	ca := newTestCA(t, "kubernetes", ECDSAP256)
	other := newTestCA(t, "front-proxy-ca", ECDSAP256)
	cert := issue(t, other, FrontProxyClient(), t0, time.Hour)
	_, err := Matches(cert, Admin(), ca.Cert, t0.Add(2*time.Hour), 0)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"issued by", "common name", "organization", "expires"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %q", err, want)
		}
	}
}

func etcdPeerSpec(t *testing.T) Spec {
	t.Helper()
	spec, err := EtcdPeer(emei)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}
