package controlplane

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/internal/testkit"
)

// probeLab is one apiserver of the lab, shaolin's, served on the fake
// network at its InternalIP with a certificate for its name and address.
type probeLab struct {
	net   *testkit.Net
	api   *testkit.APIServer
	roots *x509.CertPool
	addr  string
}

func newProbeLab(t *testing.T) *probeLab {
	t.Helper()
	_, _, ca, err := testkit.NewCA("kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	spec := certs.Spec{CommonName: "kube-apiserver", DNSNames: []string{"kubernetes", "shaolin"},
		IPs: []net.IP{net.ParseIP(testkit.ShaolinIP).To4()}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	l := &probeLab{net: testkit.NewNet(), api: &testkit.APIServer{Version: testkit.LabVersion}, roots: x509.NewCertPool(),
		addr: HostPort(testkit.ShaolinIP, DefaultAPIServerPort)}
	l.roots.AddCert(ca.Cert)
	l.net.ServeTLS(t, l.addr, testkit.ServingCert(t, ca, spec, time.Now().Add(time.Hour)), l.api)
	return l
}

func (l *probeLab) probe(t *testing.T, o ProbeOptions) ProbeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return Probe(ctx, l.net.Dialer("emei"), l.addr, o)
}

func TestProbe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		readyz  int
		opts    ProbeOptions
		ready   bool
		version string
		errHas  string
	}{
		{name: "ready", readyz: http.StatusOK, ready: true},
		{name: "ready with version", readyz: http.StatusOK, opts: ProbeOptions{Version: true}, ready: true, version: testkit.LabVersion},
		{name: "not ready names the failed checks", readyz: http.StatusInternalServerError,
			errHas: "readyz: HTTP 500: etcd failed: reason withheld"},
		{name: "not ready still has a version", readyz: http.StatusServiceUnavailable, opts: ProbeOptions{Version: true},
			version: testkit.LabVersion, errHas: "readyz: HTTP 503: etcd failed"},
		{name: "anonymous refused", readyz: http.StatusUnauthorized,
			errHas: "readyz: HTTP 401: anonymous access refused (--anonymous-auth=false?)"},
		{name: "forbidden", readyz: http.StatusForbidden, errHas: "readyz: HTTP 403: anonymous access refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newProbeLab(t)
			l.api.SetReadyz(tt.readyz)
			res := l.probe(t, tt.opts)
			if res.Ready != tt.ready || res.Version != tt.version {
				t.Errorf("ready %v version %q, want %v %q (err %v)", res.Ready, res.Version, tt.ready, tt.version, res.Err)
			}
			switch {
			case tt.errHas == "" && res.Err != nil:
				t.Errorf("error %v", res.Err)
			case tt.errHas != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tt.errHas)):
				t.Errorf("error %v, want one with %q", res.Err, tt.errHas)
			}
			// The handshake succeeded, so the certificate is there even
			// when /readyz failed.
			if res.Cert == nil || res.Cert.Subject.CommonName != "kube-apiserver" {
				t.Errorf("certificate %v", res.Cert)
			}
		})
	}
}

// TestProbeFailedChecksOnly: of a verbose readyz answer only the failed
// checks are kept, all of them.
func TestProbeFailedChecksOnly(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ body, want string }{
		{testkit.ReadyzFailure, ": etcd failed: reason withheld"},
		{"[-]etcd failed: reason withheld\n[-]poststarthook/rbac failed: not finished\nreadyz check failed", ": etcd failed: reason withheld; poststarthook/rbac failed: not finished"},
		{"service unavailable\n", ": service unavailable"},
		{"", ""},
		{strings.Repeat("x", 300), ""},
	} {
		if got := failedChecks([]byte(tt.body)); got != tt.want {
			t.Errorf("failedChecks(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

// TestProbeVerification: without roots any certificate is taken and
// returned for the caller to judge; with roots it must fit ServerName.
func TestProbeVerification(t *testing.T) {
	t.Parallel()
	l := newProbeLab(t)

	res := l.probe(t, ProbeOptions{ServerName: "not-in-the-cert"})
	if !res.Ready || res.Err != nil || res.Cert == nil {
		t.Errorf("without roots: ready %v, cert %v, err %v", res.Ready, res.Cert != nil, res.Err)
	} else if !strings.Contains(strings.Join(certs.SANs(res.Cert), " "), "IP:"+testkit.ShaolinIP) {
		t.Errorf("certificate returned: SANs %q", certs.SANs(res.Cert))
	}

	for _, name := range []string{"", "shaolin", "kubernetes"} {
		if res := l.probe(t, ProbeOptions{Roots: l.roots, ServerName: name}); !res.Ready || res.Err != nil {
			t.Errorf("roots, server name %q: ready %v, err %v", name, res.Ready, res.Err)
		}
	}

	res = l.probe(t, ProbeOptions{Roots: l.roots, ServerName: "lb.example"})
	var hostErr x509.HostnameError
	if res.Ready || !errors.As(res.Err, &hostErr) {
		t.Errorf("roots, wrong server name: ready %v, err %v (%T), want an x509.HostnameError", res.Ready, res.Err, res.Err)
	}
	if res.Cert != nil {
		t.Error("a certificate that failed verification is returned")
	}

	other := x509.NewCertPool()
	_, _, otherCA, err := testkit.NewCA("kubernetes") // same name, other key
	if err != nil {
		t.Fatal(err)
	}
	other.AddCert(otherCA.Cert)
	res = l.probe(t, ProbeOptions{Roots: other})
	var authErr x509.UnknownAuthorityError
	if res.Ready || !errors.As(res.Err, &authErr) {
		t.Errorf("other CA: ready %v, err %v (%T), want an x509.UnknownAuthorityError", res.Ready, res.Err, res.Err)
	}
}

// TestProbeDial: the connection is opened with the dialer given, to addr,
// whatever the name in the URL.
func TestProbeDial(t *testing.T) {
	t.Parallel()
	l := newProbeLab(t)
	var dialled []string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialled = append(dialled, network+" "+addr)
		return l.net.Dial(ctx, network, addr)
	}
	res := Probe(t.Context(), dial, l.addr, ProbeOptions{Roots: l.roots, ServerName: "kubernetes", Version: true})
	if !res.Ready || res.Version != testkit.LabVersion {
		t.Errorf("ready %v version %q err %v", res.Ready, res.Version, res.Err)
	}
	// One connection serves /readyz and /version.
	if len(dialled) != 1 || dialled[0] != "tcp "+l.addr {
		t.Errorf("dialled %q", dialled)
	}
}

func TestProbeUnreachable(t *testing.T) {
	t.Parallel()
	l := newProbeLab(t)

	res := Probe(t.Context(), l.net.Dial, HostPort(testkit.EmeiIP, DefaultAPIServerPort), ProbeOptions{Version: true})
	if res.Ready || res.Err == nil || !strings.Contains(res.Err.Error(), "connection refused") || res.Cert != nil {
		t.Errorf("nothing listening: %+v", res)
	}
	// The error is the dialer's, without the url.Error around it.
	if strings.Contains(res.Err.Error(), "Get ") {
		t.Errorf("error repeats the request: %v", res.Err)
	}

	l.net.Kill(testkit.ShaolinIP)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	res = Probe(ctx, l.net.Dial, l.addr, ProbeOptions{})
	if res.Ready || !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("dead node: %+v", res)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a dead node took %v, ctx allowed 100ms", took)
	}

	if res := Probe(t.Context(), l.net.Dial, testkit.ShaolinIP, ProbeOptions{}); res.Err == nil || !strings.Contains(res.Err.Error(), "missing port") {
		t.Errorf("address without port: %v", res.Err)
	}
}

// TestProbeNoVerifyStillTLS: an apiserver that speaks plain HTTP is not
// ready, whatever the options.
func TestProbeNoVerifyStillTLS(t *testing.T) {
	t.Parallel()
	n := testkit.NewNet()
	lis := n.Listen(t, "10.250.0.11:6443")
	srv := &http.Server{Handler: &testkit.APIServer{}}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	res := Probe(t.Context(), n.Dial, "10.250.0.11:6443", ProbeOptions{})
	if res.Ready || res.Err == nil || !strings.Contains(res.Err.Error(), "HTTP response to HTTPS client") {
		t.Errorf("plain HTTP: ready %v, err %v", res.Ready, res.Err)
	}
}
