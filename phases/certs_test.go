package phases

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"net"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/internal/testkit"
	"github.com/haadm/haadm/node"
)

// perNodeCerts are the certificates every new master gets, signed by the CA
// named, for the usage its peers check.
var perNodeCerts = []struct {
	name  string
	ca    string // "ca", "front-proxy-ca" or "etcd-ca"
	cn    string // "" for the node name
	usage x509.ExtKeyUsage
}{
	{"apiserver", "ca", certs.APIServerCN, x509.ExtKeyUsageServerAuth},
	{"apiserver-kubelet-client", "ca", certs.APIServerKubeletClientCN, x509.ExtKeyUsageClientAuth},
	{"front-proxy-client", "front-proxy-ca", certs.FrontProxyClientCN, x509.ExtKeyUsageClientAuth},
	{"apiserver-etcd-client", "etcd-ca", certs.APIServerEtcdClientCN, x509.ExtKeyUsageClientAuth},
	{"etcd/server", "etcd-ca", "", x509.ExtKeyUsageServerAuth},
	{"etcd/peer", "etcd-ca", "", x509.ExtKeyUsageServerAuth},
	{"etcd/healthcheck-client", "etcd-ca", certs.EtcdHealthcheckClientCN, x509.ExtKeyUsageClientAuth},
}

func (l *lab) caNamed(name string) *certs.CA {
	switch name {
	case "front-proxy-ca":
		return l.frontProxyCA
	case "etcd-ca":
		return l.etcdCA
	}
	return l.ca
}

// certFiles lists what a certs plan writes, as "node:file (why)" with file
// under pki: each detail starts with "path: why".
func certFiles(w *Work) []string {
	var out []string
	for _, s := range w.Steps {
		for _, d := range s.Details {
			first, _, _ := strings.Cut(d, "\n")
			path, why, _ := strings.Cut(first, ": ")
			out = append(out, s.Node+":"+strings.TrimPrefix(path, pkiDir+"/")+" ("+why+")")
		}
	}
	return out
}

// namesOf cuts the reasons off certFiles' entries, sorted.
func namesOf(entries []string) []string {
	var out []string
	for _, e := range entries {
		n, _, _ := strings.Cut(e, " (")
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestCertsPlanFresh: on the lab as captured, the plan names every file the
// new masters lack, and shaolin's apiserver certificate, which lacks the
// load balancer; emei and wudang already have ca.crt from kubeadm join.
// Planning reads each master once and changes nothing.
func TestCertsPlanFresh(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	w := plan(t, t.Context(), Certs{}, f.c)
	if w.Empty() {
		t.Fatal("the plan is empty on a fresh cluster")
	}
	if !w.PerNode {
		t.Error("certs work on independent files of each node: the nodes may go in parallel")
	}
	files := certFiles(w)
	var want []string
	for _, n := range []string{"emei", "wudang"} {
		for _, s := range sharedPKIFiles() {
			if s != "ca.crt" {
				want = append(want, n+":"+s)
			}
		}
		for _, c := range perNodeCerts {
			want = append(want, n+":"+c.name+".crt")
		}
	}
	want = append(want, "shaolin:apiserver.crt")
	sort.Strings(want)
	if got := namesOf(files); !slices.Equal(got, want) {
		t.Errorf("planned files:\n got %q\nwant %q", got, want)
	}
	containsAll(t, "planned files", files, []string{"emei:ca.key (copy from shaolin)", "wudang:etcd/peer.crt (missing)",
		"shaolin:apiserver.crt (missing SANs DNS:emei, IP:10.250.0.12)"})
	// A step per node, the keys counted among its files: 7 shared files
	// and 7 certificates with their keys; shaolin keeps its key.
	if got := stepsOf(w); !slices.Equal(got, []string{
		"shaolin: 1 files (apiserver.crt)",
		"emei: 21 files (ca.key, sa.key, sa.pub, and 18 more)",
		"wudang: 21 files (ca.key, sa.key, sa.pub, and 18 more)",
	}) {
		t.Errorf("steps = %q", got)
	}
	// Keys show as changed, certificates as diffs.
	d := detailsOf(w, "emei")
	mustContain(t, d, pkiDir+"/ca.key: copy from shaolin\n(private key content changed, ",
		pkiDir+"/apiserver.crt: missing\n--- /dev/null (new file)\n+++ b"+pkiDir+"/apiserver.crt", "+-----BEGIN CERTIFICATE-----")
	noKeyMaterial(t, "the certs plan", detailsOf(w, ""))
	f.unchanged(t)
	// One round trip per master, and one more to shaolin for the shared
	// files every phase copies from (read once per run).
	for n, want := range map[string]int{"shaolin": 2, "emei": 1, "wudang": 1} {
		if got := f.meters[n].counts(); got["ReadFiles"] != want || f.trips(n) != want {
			t.Errorf("%s: %v, want %d ReadFiles and nothing else", n, got, want)
		}
	}
}

// TestCertsApply runs the phase on the lab and checks every file it leaves,
// then that it converged: the next plan is empty and a second apply writes
// nothing.
func TestCertsApply(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	l := f.lab
	ctx := t.Context()

	// Somebody added a SAN to shaolin's apiserver certificate by hand; the
	// re-issue must keep it, and keep the key.
	oldKeyPEM, _ := f.file("shaolin", pkiDir+"/apiserver.key")
	oldKey, err := certs.ParseKeyPEM(oldKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	spec := certs.SpecOf(f.cert("shaolin", "apiserver"))
	spec.DNSNames = append(spec.DNSNames, "shaolin.lab.example")
	spec.IPs = append(spec.IPs, net.ParseIP("192.0.2.11").To4())
	nb, validity := certs.KubeadmWindow(time.Now().Add(-time.Hour), certs.DefaultValidity)
	handMade, err := certs.Issue(l.ca, spec, oldKey, nb, validity)
	if err != nil {
		t.Fatal(err)
	}
	f.setFile("shaolin", pkiDir+"/apiserver.crt", handMade)
	oldSANs := certs.SANs(f.cert("shaolin", "apiserver"))

	if err := apply(ctx, Certs{}, f.c); err != nil {
		t.Fatal(err)
	}
	// Each node's files are written in one batch: all of them or none.
	for _, n := range []string{"shaolin", "emei", "wudang"} {
		if got := f.meters[n].counts(); got["WriteFiles"] != 1 || got["WriteFile"] != 0 {
			t.Errorf("%s: %v, want one WriteFiles", n, got)
		}
	}

	for _, n := range []string{"emei", "wudang"} {
		t.Run(n+"/shared", func(t *testing.T) {
			for _, s := range sharedPKIFiles() {
				want, _ := f.file("shaolin", pkiDir+"/"+s)
				got, mode := f.file(n, pkiDir+"/"+s)
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from shaolin's", s)
				}
				wantMode := fileMode(s) // 0600 for keys, 0644 for certificates and sa.pub
				if mode != wantMode {
					t.Errorf("%s has mode %04o, want %04o", s, mode, wantMode)
				}
			}
		})
		ip := map[string]string{"emei": emeiIP, "wudang": wudangIP}[n]
		for _, pc := range perNodeCerts {
			t.Run(n+"/"+pc.name, func(t *testing.T) {
				cert := f.cert(n, pc.name)
				ca := l.caNamed(pc.ca)
				verifyChain(t, cert, ca.Cert, pc.usage)
				cn := pc.cn
				if cn == "" {
					cn = n
				}
				if cert.Subject.CommonName != cn {
					t.Errorf("CN = %q, want %q", cert.Subject.CommonName, cn)
				}
				keyPEM, keyMode := f.file(n, pkiDir+"/"+pc.name+".key")
				if keyMode != 0o600 {
					t.Errorf("key mode %04o, want 0600", keyMode)
				}
				if _, crtMode := f.file(n, pkiDir+"/"+pc.name+".crt"); crtMode != 0o644 {
					t.Errorf("certificate mode %04o, want 0644", crtMode)
				}
				pub, ok := keyOf(t, keyPEM).(*rsa.PublicKey)
				if !ok || !pub.Equal(cert.PublicKey) {
					t.Errorf("%s.key does not belong to %s.crt", pc.name, pc.name)
				} else if pub.N.BitLen() != 2048 {
					t.Errorf("key is RSA-%d, want RSA-2048 like the cluster CA", pub.N.BitLen())
				}
				if !cert.NotAfter.After(time.Now().Add(360 * 24 * time.Hour)) {
					t.Errorf("expires %s, want a year", cert.NotAfter)
				}
				switch pc.name {
				case "apiserver":
					// Node name and IP, the LB (emei, 10.250.0.12), the
					// kubernetes Service IP and its names.
					containsAll(t, "apiserver SANs", certs.SANs(cert), []string{"DNS:" + n, "IP:" + ip, "DNS:emei", "IP:" + emeiIP,
						"IP:10.96.0.1", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local"})
					for _, host := range []string{n, ip, emeiIP, "10.96.0.1", "kubernetes.default.svc.cluster.local"} {
						if err := cert.VerifyHostname(host); err != nil {
							t.Errorf("TLS to %s would fail: %v", host, err)
						}
					}
					if slices.Contains(certs.SANs(cert), "IP:"+shaolinIP) {
						t.Errorf("%s's apiserver certificate carries shaolin's address", n)
					}
				case "etcd/server", "etcd/peer":
					containsAll(t, pc.name+" SANs", certs.SANs(cert), []string{"DNS:" + n, "DNS:localhost", "IP:" + ip, "IP:127.0.0.1", "IP:::1"})
					if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
						t.Errorf("%s lacks client auth, which etcd checks", pc.name)
					}
				}
			})
		}
	}

	t.Run("shaolin/apiserver re-issued", func(t *testing.T) {
		cert := f.cert("shaolin", "apiserver")
		verifyChain(t, cert, l.ca.Cert, x509.ExtKeyUsageServerAuth)
		if !oldKey.Public().(*rsa.PublicKey).Equal(cert.PublicKey) {
			t.Error("shaolin's apiserver certificate has a new key; the existing one must be kept")
		}
		containsAll(t, "re-issued SANs", certs.SANs(cert), append(oldSANs, "DNS:emei", "IP:"+emeiIP))
		if got, want := f.calls("shaolin", node.CallWrite), []string{pkiDir + "/apiserver.crt"}; !slices.Equal(got, want) {
			t.Errorf("writes on shaolin = %v, want only %v", got, want)
		}
	})
	mustContain(t, f.console.String(), "[certs] emei: 21 files (ca.key, sa.key, sa.pub, and 18 more) (", "[certs] shaolin: 1 files (apiserver.crt)")
	mustContain(t, f.detail.String(), "[certs] wudang: start: 21 files", "[certs] wudang: "+pkiDir+"/etcd/server.crt: missing")

	done, why, err := check(ctx, Certs{}, f.c)
	if err != nil || !done {
		t.Fatalf("plan after apply: done=%v why=%q err=%v", done, why, err)
	}
	before := f.writes()
	if err := apply(ctx, Certs{}, f.c); err != nil {
		t.Fatal(err)
	}
	if after := f.writes(); !equalWrites(before, after) {
		t.Errorf("second apply wrote: before %v, after %v", before, after)
	}
}

func equalWrites(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestCertsRepair starts from a converged cluster, breaks one thing at a
// time, and checks that the plan names exactly that and applying it mends
// it, keeping the existing key when there is one.
func TestCertsRepair(t *testing.T) {
	t.Parallel()
	base := newFixture(t, setup{})
	if err := apply(t.Context(), Certs{}, base.c); err != nil {
		t.Fatal(err)
	}
	_, _, otherEtcdCA, err := testkit.NewCA("etcd-ca") // same name as the cluster's, other key
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		node     string
		file     string // under pki
		break_   func(t *testing.T, f *fixture)
		why      string
		keepsKey bool
	}{
		{
			name: "signed by a foreign CA of the same name", node: "emei", file: "etcd/server.crt", keepsKey: true,
			break_: func(t *testing.T, f *fixture) {
				keyPEM, _ := f.file("emei", pkiDir+"/etcd/server.key")
				k, _ := certs.ParseKeyPEM(keyPEM)
				nb, v := certs.KubeadmWindow(time.Now(), certs.DefaultValidity)
				crt, err := certs.Issue(otherEtcdCA, certs.SpecOf(f.cert("emei", "etcd/server")), k, nb, v)
				if err != nil {
					t.Fatal(err)
				}
				f.setFile("emei", pkiDir+"/etcd/server.crt", crt)
			},
			why: `not signed by CA "etcd-ca"`,
		},
		{
			name: "expires within the renewal margin", node: "wudang", file: "apiserver.crt", keepsKey: true,
			break_: func(t *testing.T, f *fixture) {
				keyPEM, _ := f.file("wudang", pkiDir+"/apiserver.key")
				k, _ := certs.ParseKeyPEM(keyPEM)
				crt, err := certs.Issue(f.lab.ca, certs.SpecOf(f.cert("wudang", "apiserver")), k, time.Now().Add(-300*24*time.Hour), 310*24*time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				f.setFile("wudang", pkiDir+"/apiserver.crt", crt)
			},
			why: "within 720h0m0s",
		},
		{
			name: "certificate deleted, key left", node: "wudang", file: "front-proxy-client.crt", keepsKey: true,
			break_: func(t *testing.T, f *fixture) { f.fakes["wudang"].RemoveFile(pkiDir + "/front-proxy-client.crt") },
			why:    "missing",
		},
		{
			name: "certificate and key deleted", node: "emei", file: "apiserver-kubelet-client.crt",
			break_: func(t *testing.T, f *fixture) {
				f.fakes["emei"].RemoveFile(pkiDir + "/apiserver-kubelet-client.crt")
				f.fakes["emei"].RemoveFile(pkiDir + "/apiserver-kubelet-client.key")
			},
			why: "missing",
		},
		{
			name: "certificate unreadable", node: "emei", file: "etcd/peer.crt", keepsKey: true,
			break_: func(t *testing.T, f *fixture) {
				f.setFile("emei", pkiDir+"/etcd/peer.crt", []byte("not a certificate\n"))
			},
			why: "unreadable",
		},
		{
			name: "shared file differs", node: "wudang", file: "sa.pub",
			break_: func(t *testing.T, f *fixture) { f.setFile("wudang", pkiDir+"/sa.pub", []byte("stale\n")) },
			why:    "copy from shaolin",
		},
		{
			// Same bytes, but readable by everyone: the mode is part of the copy.
			name: "shared key with a loose mode", node: "emei", file: "ca.key",
			break_: func(t *testing.T, f *fixture) {
				b, _ := f.file("emei", pkiDir+"/ca.key")
				f.fakes["emei"].SetFile(pkiDir+"/ca.key", b, 0o644)
			},
			why: "copy from shaolin",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, setup{})
			for n, h := range base.fakes {
				for _, p := range h.Files() {
					st, _ := h.Stat(p)
					f.fakes[n].SetFiles(st)
				}
			}
			tt.break_(t, f)
			keyPath := pkiDir + "/" + strings.TrimSuffix(tt.file, ".crt") + ".key"
			shared := slices.Contains(sharedPKIFiles(), tt.file)
			oldKey, _, hadKey := f.fakes[tt.node].File(keyPath)
			w := plan(t, t.Context(), Certs{}, f.c)
			files := certFiles(w)
			if len(files) != 1 || !strings.HasPrefix(files[0], tt.node+":"+tt.file+" (") || !strings.Contains(files[0], tt.why) {
				t.Fatalf("plan = %q, want only %s:%s (%s...)", files, tt.node, tt.file, tt.why)
			}
			if err := apply(t.Context(), Certs{}, f.c); err != nil {
				t.Fatal(err)
			}
			if done, why, err := check(t.Context(), Certs{}, f.c); err != nil || !done {
				t.Fatalf("after apply: done=%v why=%q err=%v", done, why, err)
			}
			writes := f.calls(tt.node, node.CallWrite)
			if shared {
				want, _ := base.fakes["shaolin"].Stat(pkiDir + "/" + tt.file)
				got, _ := f.fakes[tt.node].Stat(pkiDir + "/" + tt.file)
				if !bytes.Equal(got.Data, want.Data) || got.Mode != want.Mode {
					t.Errorf("%s: mode %04o, want shaolin's copy with %04o", tt.file, got.Mode, want.Mode)
				}
				if !slices.Equal(writes, []string{pkiDir + "/" + tt.file}) {
					t.Errorf("writes = %v", writes)
				}
				return
			}
			newKey, _, _ := f.fakes[tt.node].File(keyPath)
			if tt.keepsKey != bytes.Equal(oldKey, newKey) || (tt.keepsKey && !hadKey) {
				t.Errorf("key kept = %v, want %v", bytes.Equal(oldKey, newKey), tt.keepsKey)
			}
			wantWrites := []string{pkiDir + "/" + tt.file}
			if !tt.keepsKey {
				wantWrites = append([]string{keyPath}, wantWrites...)
			}
			if !slices.Equal(writes, wantWrites) {
				t.Errorf("writes = %v, want %v", writes, wantWrites)
			}
		})
	}
}

// TestCertsMissingCAKey: without the CA keys haadm cannot sign, and says so
// before it changes anything.
func TestCertsMissingCAKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.fakes["shaolin"].RemoveFile(pkiDir + "/front-proxy-ca.key")
	_, _, err := check(t.Context(), Certs{}, f.c)
	if err == nil {
		t.Fatal("Plan succeeded without front-proxy-ca.key")
	}
	mustContain(t, err.Error(), "node shaolin", "front-proxy-ca.key is missing", "copies the cluster's CAs from the first master")
	if err := apply(t.Context(), Certs{}, f.c); err == nil {
		t.Fatal("apply succeeded without front-proxy-ca.key")
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("wrote %v", w)
	}
}

// TestCertsExtraSANs: --cert-sans and the apiServer.certSANs kubeadm-config
// already has end up in every apiserver certificate.
func TestCertsExtraSANs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "emei", CertSANs: []string{"api.example.com", "192.0.2.50"}}})
	f.c.Facts.CertSANs = []string{"*.k8s.example.com"}
	if err := apply(t.Context(), Certs{}, f.c); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"shaolin", "emei"} {
		containsAll(t, n, certs.SANs(f.cert(n, "apiserver")), []string{"DNS:api.example.com", "IP:192.0.2.50", "DNS:*.k8s.example.com"})
	}
	if _, _, ok := f.fakes["wudang"].File(pkiDir + "/apiserver.crt"); ok {
		t.Error("wudang, not in --nodes, got an apiserver certificate")
	}
}

// TestCertsNodeLocal: with nginx on 127.0.0.1 of every node, clients name
// the API localhost, so every apiserver certificate carries localhost and
// 127.0.0.1, shaolin's re-issued one included.
func TestCertsNodeLocal(t *testing.T) {
	t.Parallel()
	f := certifiedFixture(t, setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBMode: "node-local"}})
	for _, n := range []string{"shaolin", "emei", "wudang"} {
		cert := f.cert(n, "apiserver")
		containsAll(t, n, certs.SANs(cert), []string{"DNS:localhost", "IP:127.0.0.1"})
		if err := cert.VerifyHostname("localhost"); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}
