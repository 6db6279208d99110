package status

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/internal/testkit"
	"github.com/haadm/haadm/node"
)

// sshHost is a fake node that knows the address haadm logged in to, as
// node.SSHHost does.
type sshHost struct {
	*node.Fake
	addr string
}

func (h sshHost) Addr() string { return h.addr }

// etcdCredentials are the files etcdm.Connect reads on the master it
// connects from.
func etcdCredentials() []string {
	return []string{controlplane.PKIDir + "/etcd/ca.crt", controlplane.PKIDir + "/apiserver-etcd-client.crt", controlplane.PKIDir + "/apiserver-etcd-client.key"}
}

// gatherEnv is haEnv with a real etcd PKI, since Gather connects with
// etcdm.Connect: every master holds etcd's CA and the apiserver's etcd
// client credentials, and the fake members serve a certificate of that CA.
func gatherEnv(t *testing.T) *labEnv {
	t.Helper()
	e := haEnv(t)
	caPEM, _, ca, err := testkit.NewCA("etcd-ca")
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := testkit.IssueLeaf(ca, certs.Spec{CommonName: "kube-apiserver-etcd-client",
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	paths := etcdCredentials()
	for _, m := range e.masters {
		e.hosts[m].SetFile(paths[0], caPEM, 0o644)
		e.hosts[m].SetFile(paths[1], crt, 0o644)
		e.hosts[m].SetFile(paths[2], key, 0o600)
	}
	e.etcdCA = ca
	// Gather judges by the real clock and the etcd client verifies.
	e.notAfter = time.Now().Add(30 * 24 * time.Hour)
	return e
}

// gatherDialer logs in to the lab's fake nodes: those in down fail, the
// others report addr(name) as their address.
type gatherDialer struct {
	e    *labEnv
	addr func(name string) string
	down []string
	// hang are nodes that never answer (cut off): their login lasts until
	// its context ends. slow logins take that long more.
	hang []string
	slow map[string]time.Duration
	// hangStarted is when the first hanging login began.
	hangStarted time.Time
	// firstRead is when each node's files were first read.
	firstRead map[string]time.Time

	mu     sync.Mutex
	dialed []string
}

func (d *gatherDialer) dial(ctx context.Context, name string) (node.Host, error) {
	d.mu.Lock()
	d.dialed = append(d.dialed, name)
	d.mu.Unlock()
	if slices.Contains(d.hang, name) {
		d.mu.Lock()
		if d.hangStarted.IsZero() {
			d.hangStarted = time.Now()
		}
		d.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	time.Sleep(d.slow[name])
	h, ok := d.e.hosts[name]
	if !ok || slices.Contains(d.down, name) {
		return nil, fmt.Errorf("node %s: connecting to %s:22: connection refused", name, d.e.ips[name])
	}
	if d.firstRead != nil {
		return readClock{sshHost{Fake: h, addr: d.addr(name)}, d}, nil
	}
	return sshHost{Fake: h, addr: d.addr(name)}, nil
}

// readClock notes when a node's files were first read.
type readClock struct {
	sshHost
	d *gatherDialer
}

func (h readClock) ReadFiles(ctx context.Context, paths []string) (map[string]node.File, error) {
	h.d.mu.Lock()
	if _, ok := h.d.firstRead[h.Name()]; !ok {
		h.d.firstRead[h.Name()] = time.Now()
	}
	h.d.mu.Unlock()
	return h.sshHost.ReadFiles(ctx, paths)
}

// credentialsReadOn names the masters etcdm.Connect read credentials on.
func credentialsReadOn(e *labEnv) []string {
	var out []string
	for _, m := range e.masters {
		for _, c := range e.hosts[m].Calls() {
			if c.Kind == node.CallRead && c.Path == etcdCredentials()[2] {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

func checkAllClosed(t *testing.T, e *labEnv, d *gatherDialer) {
	t.Helper()
	for _, name := range d.dialed {
		if h, ok := e.hosts[name]; ok && !slices.Contains(d.down, name) && !slices.Contains(d.hang, name) && !h.Closed() {
			t.Errorf("%s left open", name)
		}
	}
}

func TestGatherHA(t *testing.T) {
	e := gatherEnv(t)
	e.inputs(t)
	// The API lists every node's address: the login address, here a
	// bastion's, must not be taken for it.
	d := &gatherDialer{e: e, addr: func(string) string { return "bastion.example:2222" }}
	r := Gather(t.Context(), GatherOptions{Kube: e.kube, Dial: d.dial, ProbeTimeout: 2 * time.Second})
	if r.Verdict != VerdictHA || ExitCode(r) != ExitHA {
		t.Errorf("verdict %s, exit %d:\n  %s", r.Verdict, ExitCode(r), strings.Join(r.Reasons, "\n  "))
	}
	if len(r.Etcd.Members) != 3 || r.Etcd.Error != "" {
		t.Errorf("etcd: %+v", r.Etcd)
	}
	slices.Sort(d.dialed)
	if !slices.Equal(d.dialed, []string{"emei", "shaolin", "wudang"}) {
		t.Errorf("logged in to %q", d.dialed)
	}
	// The first master holds the credentials for sure.
	if got := credentialsReadOn(e); !slices.Equal(got, []string{"shaolin"}) {
		t.Errorf("etcd credentials read on %q, want shaolin", got)
	}
	checkAllClosed(t, e, d)
}

// TestGatherUnreachable: shaolin refuses SSH. It is reported, and etcd is
// reached with another master's credentials.
func TestGatherUnreachable(t *testing.T) {
	e := gatherEnv(t)
	e.inputs(t)
	d := &gatherDialer{e: e, addr: func(n string) string { return e.ips[n] + ":22" }, down: []string{"shaolin"}}
	r := Gather(t.Context(), GatherOptions{Kube: e.kube, Dial: d.dial, Extra: []string{"emei"}, ProbeTimeout: 2 * time.Second})
	want := []NodeError{{Node: "shaolin", Error: "unreachable: connecting to 10.250.0.11:22: connection refused"}}
	if !slices.Equal(r.Unreachable, want) {
		t.Errorf("unreachable %+v, want %+v", r.Unreachable, want)
	}
	if len(r.Etcd.Members) != 3 || r.Etcd.Error != "" {
		t.Errorf("etcd: %+v", r.Etcd)
	}
	if got := credentialsReadOn(e); !slices.Equal(got, []string{"emei"}) {
		t.Errorf("etcd credentials read on %q, want emei", got)
	}
	if r.Verdict != VerdictDegraded || !slices.Contains(r.Reasons, "node shaolin: not inspected (unreachable: connecting to 10.250.0.11:22: connection refused)") {
		t.Errorf("verdict %s:\n  %s", r.Verdict, strings.Join(r.Reasons, "\n  "))
	}
	if n := strings.Count(strings.Join(d.dialed, " "), "emei"); n != 1 {
		t.Errorf("emei, listed and in Extra, dialled %d times", n)
	}
	checkAllClosed(t, e, d)
}

// TestGatherCutOff: shaolin is cut off, its login never answers, and
// wudang's login is slow. The inspection does not wait for shaolin's login
// to time out; wudang, late, is inspected all the same and not taken for
// unreachable.
func TestGatherCutOff(t *testing.T) {
	e := gatherEnv(t)
	e.inputs(t)
	d := &gatherDialer{e: e, addr: func(n string) string { return e.ips[n] + ":22" }, hang: []string{"shaolin"},
		slow: map[string]time.Duration{"wudang": 300 * time.Millisecond}, firstRead: map[string]time.Time{}}
	r := Gather(t.Context(), GatherOptions{Kube: e.kube, Dial: d.dial, ProbeTimeout: time.Second})
	want := []NodeError{{Node: "shaolin", Error: "unreachable: no connection within 1s: context deadline exceeded"}}
	if !slices.Equal(r.Unreachable, want) {
		t.Errorf("unreachable %+v, want %+v", r.Unreachable, want)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// shaolin's login cannot give up before its timeout has passed.
	if read, ok := d.firstRead["emei"]; !ok || !read.Before(d.hangStarted.Add(time.Second)) {
		t.Errorf("emei's files read %v after shaolin's login began: the inspection waited for it to time out", read.Sub(d.hangStarted))
	}
	if _, ok := d.firstRead["wudang"]; !ok {
		t.Error("wudang, whose login was late, was never read")
	}
	for _, k := range r.Kubeconfigs {
		if k.Node == "wudang" && k.Error != "" {
			t.Errorf("wudang's %s: %s", k.File, k.Error)
		}
	}
	if len(r.Etcd.Members) != 3 || r.Etcd.Error != "" {
		t.Errorf("etcd: %+v", r.Etcd)
	}
	if r.Verdict != VerdictDegraded || !slices.Contains(r.Reasons, "node shaolin: not inspected (unreachable: no connection within 1s: context deadline exceeded)") {
		t.Errorf("verdict %s:\n  %s", r.Verdict, strings.Join(r.Reasons, "\n  "))
	}
	for _, reason := range r.Reasons {
		if strings.Contains(reason, "wudang") {
			t.Errorf("wudang, only late, is blamed: %s", reason)
		}
	}
	checkAllClosed(t, e, d)
}

// TestGatherQuickNonMaster: a machine that is no master (here one named
// with --nodes) answers long before the masters, which are merely slow: the
// wait for logins is ended by a master's, so etcd and the probes still go
// through the masters and nothing is blamed.
func TestGatherQuickNonMaster(t *testing.T) {
	e := gatherEnv(t)
	e.inputs(t)
	e.hosts["wutai"] = node.NewFake("wutai")
	slow := map[string]time.Duration{}
	for _, m := range e.masters {
		slow[m] = 200 * time.Millisecond
	}
	d := &gatherDialer{e: e, addr: func(n string) string { return n + ":22" }, slow: slow}
	r := Gather(t.Context(), GatherOptions{Kube: e.kube, Dial: d.dial, Extra: []string{"wutai"}, ProbeTimeout: time.Second})
	if len(r.Etcd.Members) != 3 || r.Etcd.Error != "" {
		t.Errorf("etcd: %+v", r.Etcd)
	}
	if len(r.Unreachable) != 0 || r.Verdict != VerdictHA {
		t.Errorf("unreachable %+v, verdict %s:\n  %s", r.Unreachable, r.Verdict, strings.Join(r.Reasons, "\n  "))
	}
	checkAllClosed(t, e, d)
}

// TestGatherNoAPI: without a client the nodes the operator names are the
// masters; their login addresses lead to etcd, and etcd to the apiservers.
func TestGatherNoAPI(t *testing.T) {
	e := gatherEnv(t)
	e.inputs(t)
	d := &gatherDialer{e: e, addr: func(n string) string { return e.ips[n] + ":22" }}
	r := Gather(t.Context(), GatherOptions{Dial: d.dial, Extra: []string{"wudang", "shaolin", "emei"}, FirstMaster: "wudang",
		ProbeTimeout: 2 * time.Second})
	if r.API.Reachable || ExitCode(r) != ExitNoAPI {
		t.Errorf("API %+v, exit %d", r.API, ExitCode(r))
	}
	var ready []string
	for _, a := range r.APIServers {
		if a.Ready {
			ready = append(ready, a.Node)
		}
	}
	if !slices.Equal(ready, []string{"emei", "shaolin", "wudang"}) {
		t.Errorf("apiservers found through etcd: %+v", r.APIServers)
	}
	// --first-master says whose credentials come first.
	if got := credentialsReadOn(e); !slices.Equal(got, []string{"wudang"}) {
		t.Errorf("etcd credentials read on %q, want wudang", got)
	}
	checkAllClosed(t, e, d)
}

// TestGatherNoMasterReachable: no master to read etcd credentials from.
func TestGatherNoMasterReachable(t *testing.T) {
	e := gatherEnv(t)
	e.inputs(t)
	d := &gatherDialer{e: e, addr: func(n string) string { return e.ips[n] + ":22" }, down: []string{"shaolin", "emei", "wudang"}}
	r := Gather(t.Context(), GatherOptions{Kube: e.kube, Dial: d.dial, ProbeTimeout: 500 * time.Millisecond})
	if r.Etcd.Error != "connect: no control-plane node is reachable over SSH" || len(r.Unreachable) != 3 {
		t.Errorf("etcd %+v, unreachable %+v", r.Etcd, r.Unreachable)
	}
}

func TestEtcdMasters(t *testing.T) {
	t.Parallel()
	at := func(m int) time.Time { return testNow.Add(time.Duration(m) * time.Minute) }
	nodes := []controlplane.Node{
		{Name: "emei", ControlPlane: true, Created: at(2)},
		{Name: "shaolin", ControlPlane: true, Created: at(1)},
		{Name: "wudang", ControlPlane: true, Created: at(3)},
		{Name: "wutai", Created: at(0)},
	}
	for _, tt := range []struct {
		name  string
		nodes []controlplane.Node
		extra []string
		first string
		want  []string
	}{
		{"the oldest master first", nodes, []string{"wutai"}, "", []string{"shaolin", "emei", "wudang"}},
		{"--first-master first", nodes, nil, "wudang", []string{"wudang", "emei", "shaolin"}},
		{"--first-master that is no master", nodes, nil, "wutai", []string{"emei", "shaolin", "wudang"}},
		{"no API: the nodes named", nil, []string{"wudang", "emei", "wudang"}, "", []string{"emei", "wudang"}},
		{"no API, --first-master", nil, []string{"wudang", "emei"}, "wudang", []string{"wudang", "emei"}},
		{"nothing", nil, nil, "", nil},
	} {
		if got := etcdMasters(tt.nodes, tt.extra, tt.first); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestSSHAddress(t *testing.T) {
	t.Parallel()
	f := node.NewFake("emei")
	for _, tt := range []struct {
		h    node.Host
		want string
	}{
		{sshHost{f, "10.250.0.12:22"}, "10.250.0.12"},
		{sshHost{f, "[fd00::12]:2222"}, "fd00::12"},
		{sshHost{f, "garbage"}, ""},
		{f, ""}, // a Host that does not know
	} {
		if got := sshAddress(tt.h); got != tt.want {
			t.Errorf("sshAddress(%v) = %q, want %q", tt.h, got, tt.want)
		}
	}
}
