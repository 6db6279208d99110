package phases

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

const (
	nginxTest     = "nginx -t -q -c /etc/nginx/.haadm-nginx.conf.new; rc=$?; rm -f /etc/nginx/.haadm-nginx.conf.new; exit $rc"
	nginxStart    = "systemctl enable nginx >/dev/null 2>&1; systemctl restart nginx"
	nginxReload   = "systemctl reload nginx"
	nginxIsActive = "systemctl is-active nginx"
	nginxConf     = "/etc/nginx/nginx.conf"
)

// nginxScript is a node's systemd and nginx: inactive until started, and
// accepting any configuration unless refuse is set. journal, shared by the
// nodes of a test, records "node: command" for the commands that change
// something, in the order they ran. Preflight's probe sees the same state.
type nginxScript struct {
	f       *fixture
	node    string
	mu      sync.Mutex
	active  bool
	refuse  bool
	journal *[]string
}

func (s *nginxScript) setActive(v bool) {
	s.mu.Lock()
	s.active = v
	s.mu.Unlock()
	state := "inactive\n"
	if v {
		state = "active\n"
	}
	s.f.setProbe(s.node, func(p *probe) { p.nginxActive = state })
}

// scriptNginx scripts nginx on a node; journal may be nil.
func scriptNginx(f *fixture, nodeName string, refuse bool, journal *[]string) *nginxScript {
	s := &nginxScript{f: f, node: nodeName, refuse: refuse, journal: journal}
	f.handle(nodeName, func(cmd string) (string, bool, error) {
		s.mu.Lock()
		log := func() {
			if s.journal != nil {
				*s.journal = append(*s.journal, nodeName+": "+cmd)
			}
		}
		switch cmd {
		case nginxIsActive:
			defer s.mu.Unlock()
			if s.active {
				return "active\n", true, nil
			}
			return "inactive\n", true, &node.CmdError{Node: nodeName, Cmd: cmd, ExitCode: 3, Stdout: []byte("inactive\n")}
		case nginxTest:
			defer s.mu.Unlock()
			log()
			if s.refuse {
				return "", true, &node.CmdError{Node: nodeName, Cmd: cmd, ExitCode: 1, Stderr: []byte(`nginx: [emerg] unknown directive "stream" in /etc/nginx/.haadm-nginx.conf.new:12`)}
			}
			return "", true, nil
		case nginxStart:
			log()
			s.mu.Unlock()
			s.setActive(true)
			return "", true, nil
		case nginxReload:
			defer s.mu.Unlock()
			log()
			return "", true, nil
		}
		s.mu.Unlock()
		return "", false, nil
	})
	return s
}

// TestNginxRunning: whether nginx runs is what preflight saw on the node,
// or, when preflight did not run, what systemd says.
func TestNginxRunning(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.useFakeEtcd(labVoters()...)
	s := scriptNginx(f, "emei", false, nil)
	ctx := t.Context()
	if serviceActive(ctx, f.c, "emei", "nginx") {
		t.Error("inactive nginx seen running")
	}
	s.setActive(true)
	if !serviceActive(ctx, f.c, "emei", "nginx") {
		t.Error("active nginx not seen running")
	}
	if got := f.calls("emei", node.CallOutput); !slices.Equal(got, []string{nginxIsActive, nginxIsActive}) {
		t.Errorf("commands %q", got)
	}
	if err := Preflight(ctx, f.c); err != nil {
		t.Fatal(err)
	}
	s.setActive(false) // after preflight: not seen
	if !serviceActive(ctx, f.c, "emei", "nginx") {
		t.Error("preflight saw nginx running, the plan does not")
	}
	if n := len(f.calls("emei", node.CallOutput)); n != 4 {
		t.Errorf("%d commands after preflight, want its probe and its images/nginx -t check only", n)
	}
}

// TestLB installs nginx on emei in front of the three apiservers, starts
// it, and waits until /readyz answers through it with a certificate valid
// for the endpoint. A changed configuration is reloaded, not restarted; a
// stopped nginx with the right configuration is only started.
func TestLB(t *testing.T) {
	t.Parallel()
	f := certifiedFixture(t, setup{})
	ngx := scriptNginx(f, "emei", false, nil)
	// nginx forwards to an apiserver; shaolin's re-issued certificate
	// covers the endpoint 10.250.0.12.
	f.serveAPIServer("shaolin", emeiIP+":8443", http.StatusOK)
	ctx := testCtx(t, 30*time.Second)

	w := plan(t, ctx, LB{}, f.c)
	if got, want := stepsOf(w), []string{"emei: /etc/nginx/nginx.conf, nginx started, listening on :8443"}; !slices.Equal(got, want) {
		t.Fatalf("plan = %q, want %q", got, want)
	}
	mustContain(t, detailsOf(w, "emei"), nginxConf+"\n--- /dev/null (new file)\n", "+        server 10.250.0.13:6443", nginxStart)
	if err := w.apply(ctx, "lb", f.c.Log); err != nil {
		t.Fatal(err)
	}
	conf, mode := f.file("emei", nginxConf)
	if mode != 0o644 {
		t.Errorf("nginx.conf mode %04o", mode)
	}
	backends, err := lb.ParseNginxBackends(conf)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.250.0.11:6443", "10.250.0.12:6443", "10.250.0.13:6443"}; !slices.Equal(backends, want) {
		t.Errorf("backends = %v, want %v", backends, want)
	}
	if listen, _ := lb.ParseNginxListen(conf); listen != "0.0.0.0:8443" {
		t.Errorf("listen %s", listen)
	}
	if staged, _, _ := f.fakes["emei"].File("/etc/nginx/.haadm-nginx.conf.new"); string(staged) != string(conf) {
		t.Error("nginx -t did not check the file that was installed")
	}
	if got, want := f.calls("emei", node.CallRun), []string{nginxTest, nginxStart}; !slices.Equal(got, want) {
		t.Errorf("runs = %q, want %q", got, want)
	}
	if got, want := slices.DeleteFunc(f.calls("emei", node.CallWrite), func(p string) bool { return strings.HasPrefix(p, pkiDir) }),
		[]string{"/etc/nginx/.haadm-nginx.conf.new", nginxConf}; !slices.Equal(got, want) {
		t.Errorf("writes = %q, want the staged file, then the real one", got)
	}
	if d := f.calls("emei", node.CallDial); !slices.Contains(d, "tcp 10.250.0.12:8443") {
		t.Errorf("emei dials = %v: the LB is asked from its own node", d)
	}
	for _, n := range []string{"shaolin", "wudang"} {
		if w := f.calls(n, node.CallRun); len(w) != 0 {
			t.Errorf("%s ran %v", n, w)
		}
	}
	mustContain(t, f.console.String(), "[lb] emei: /etc/nginx/nginx.conf, nginx started, listening on :8443 (")

	done, why, err := check(ctx, LB{}, f.c)
	if err != nil || !done {
		t.Fatalf("plan after = %v, %q, %v", done, why, err)
	}
	runs, writes := len(f.calls("emei", node.CallRun)), len(f.calls("emei", node.CallWrite))
	if err := apply(ctx, LB{}, f.c); err != nil {
		t.Fatal(err)
	}
	if len(f.calls("emei", node.CallRun)) != runs || len(f.calls("emei", node.CallWrite)) != writes {
		t.Error("second apply changed emei")
	}

	// An operator edited the file: it is put back and nginx reloaded.
	f.setFile("emei", nginxConf, []byte(strings.Replace(string(conf), "10.250.0.13:6443", "10.250.0.99:6443", 1)))
	if done, why, _ := check(ctx, LB{}, f.c); done || why != "emei: /etc/nginx/nginx.conf, nginx reloaded, listening on :8443" {
		t.Errorf("after an edit: plan %q", why)
	}
	if err := apply(ctx, LB{}, f.c); err != nil {
		t.Fatal(err)
	}
	if got := f.calls("emei", node.CallRun)[runs:]; !slices.Equal(got, []string{nginxTest, nginxReload}) {
		t.Errorf("after an edit: runs %q, want test and reload", got)
	}
	if now, _ := f.file("emei", nginxConf); string(now) != string(conf) {
		t.Error("nginx.conf not restored")
	}

	// nginx stopped (a reboot without enable): started, nothing written.
	ngx.setActive(false)
	runs, writes = len(f.calls("emei", node.CallRun)), len(f.calls("emei", node.CallWrite))
	if done, why, _ := check(ctx, LB{}, f.c); done || why != "emei: nginx started, listening on :8443" {
		t.Errorf("nginx stopped: plan %q", why)
	}
	if err := apply(ctx, LB{}, f.c); err != nil {
		t.Fatal(err)
	}
	if got := f.calls("emei", node.CallRun)[runs:]; !slices.Equal(got, []string{nginxStart}) || len(f.calls("emei", node.CallWrite)) != writes {
		t.Errorf("nginx stopped: runs %q and %d writes, want only the start", got, len(f.calls("emei", node.CallWrite))-writes)
	}
}

// TestLBRefusedConfig: a configuration nginx refuses never replaces the
// working one.
func TestLBRefusedConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	scriptNginx(f, "emei", true, nil)
	f.setFile("emei", nginxConf, []byte("# the operator's working nginx.conf\n"))
	err := apply(testCtx(t, 10*time.Second), LB{}, f.c)
	if err == nil {
		t.Fatal("apply succeeded with a refused configuration")
	}
	mustContain(t, err.Error(), "node emei: /etc/nginx/nginx.conf, nginx started", "nginx refused the rendered configuration", `unknown directive "stream"`)
	if b, _ := f.file("emei", nginxConf); string(b) != "# the operator's working nginx.conf\n" {
		t.Error("the working nginx.conf was replaced")
	}
	if got := f.calls("emei", node.CallRun); !slices.Equal(got, []string{nginxTest}) {
		t.Errorf("runs = %q: nginx must not be restarted", got)
	}
}

// TestLBModeNone: haadm runs no LB; it only checks that the operator's
// answers at the endpoint, from the first master, with a certificate for
// the endpoint's name (which the certs phase put in every apiserver's).
// The plan says why it does not answer yet.
func TestLBModeNone(t *testing.T) {
	t.Parallel()
	opts := Options{Nodes: []string{"emei", "wudang"}, LBMode: lb.ModeNone, Endpoint: "k8s-api.lab:6443"}
	before := newFixture(t, setup{Opts: opts})
	before.serveAPIServer("shaolin", "k8s-api.lab:6443", http.StatusOK)
	w := plan(t, t.Context(), LB{}, before.c)
	if got := stepsOf(w); !slices.Equal(got, []string{"load balancer k8s-api.lab:6443 answers /readyz"}) {
		t.Fatalf("before the certs phase: %q", got)
	}
	mustContain(t, detailsOf(w, ""), "x509", "run `haadm phase certs`")
	// Applied, it waits, and says what it last saw.
	err := w.apply(testCtx(t, 2*time.Second), "lb", before.c.Log)
	if err == nil {
		t.Fatal("the wait for a load balancer with a wrong certificate ended")
	}
	mustContain(t, err.Error(), "load balancer k8s-api.lab:6443 answers /readyz: timed out", "waiting for load balancer k8s-api.lab:6443 answers /readyz (last state: ")
	mustContain(t, before.detail.String(), "[lb] waiting for load balancer k8s-api.lab:6443 answers /readyz: ", "x509", "run `haadm phase certs`")

	f := certifiedFixture(t, setup{Opts: opts})
	srv := f.serveAPIServer("wudang", "k8s-api.lab:6443", http.StatusServiceUnavailable)
	w = plan(t, t.Context(), LB{}, f.c)
	if w.Empty() || !strings.Contains(detailsOf(w, ""), "readyz: HTTP 503: ") {
		t.Errorf("an LB whose apiserver is not ready: %q %q", stepsOf(w), detailsOf(w, ""))
	}
	srv.Close()
	f.serveAPIServer("shaolin", "k8s-api.lab:6443", http.StatusOK)
	done, why, err := check(t.Context(), LB{}, f.c)
	if err != nil || !done {
		t.Fatalf("after the certs phase: %v, %q, %v", done, why, err)
	}
	if d := f.calls("shaolin", node.CallDial); len(d) == 0 || d[len(d)-1] != "tcp k8s-api.lab:6443" {
		t.Errorf("shaolin dials = %v", d)
	}
	for n := range f.fakes {
		if len(f.calls(n, node.CallRun)) != 0 || len(f.calls(n, node.CallOutput)) != 0 || slices.Contains(f.calls(n, node.CallWrite), nginxConf) {
			t.Errorf("%s: nginx touched in --lb-mode none", n)
		}
	}
}

// TestLBNodeLocal: nginx on 127.0.0.1:6444 of every node, installed and
// checked one node at a time, each node's /readyz asked through its own
// nginx for the name localhost (which the certs phase added).
func TestLBNodeLocal(t *testing.T) {
	t.Parallel()
	f := certifiedFixture(t, setup{Worker: true, Opts: Options{Nodes: []string{"emei", "wudang"}, LBMode: lb.ModeNodeLocal}})
	nodes := []string{"emei", "shaolin", "wudang", "wutai"}
	var journal []string
	for _, n := range nodes {
		scriptNginx(f, n, false, &journal)
		// Each node's nginx forwards to an apiserver; shaolin's answers.
		f.serveAPIServer("shaolin", n+">127.0.0.1:6444", http.StatusOK)
	}
	ctx := testCtx(t, 30*time.Second)
	w := plan(t, ctx, LB{}, f.c)
	var want []string
	for _, n := range nodes {
		want = append(want, n+": /etc/nginx/nginx.conf, nginx started, listening on :6444")
	}
	if got := stepsOf(w); !slices.Equal(got, want) {
		t.Fatalf("plan = %q", got)
	}
	if w.PerNode {
		t.Error("node-local nginx goes one node at a time: a broken config must not take every node's API access down")
	}
	if err := w.apply(ctx, "lb", f.c.Log); err != nil {
		t.Fatal(err)
	}
	var first []byte
	for _, n := range nodes {
		conf, _ := f.file(n, nginxConf)
		if first == nil {
			first = conf
		} else if string(conf) != string(first) {
			t.Errorf("%s: nginx.conf differs from emei's", n)
		}
		if listen, _ := lb.ParseNginxListen(conf); listen != "127.0.0.1:6444" {
			t.Errorf("%s: listen %s, want 127.0.0.1:6444 only", n, listen)
		}
		if got := f.calls(n, node.CallRun); !slices.Equal(got, []string{nginxTest, nginxStart}) {
			t.Errorf("%s: runs %q", n, got)
		}
		if d := f.calls(n, node.CallDial); !slices.Equal(d, []string{"tcp 127.0.0.1:6444"}) {
			t.Errorf("%s: dials %v, want its own nginx", n, d)
		}
	}
	backends, _ := lb.ParseNginxBackends(first)
	if want := []string{"10.250.0.11:6443", "10.250.0.12:6443", "10.250.0.13:6443"}; !slices.Equal(backends, want) {
		t.Errorf("backends = %v, want %v", backends, want)
	}
	// One node at a time: a node's nginx is tested and started before the
	// next node is touched.
	var order []string
	for _, n := range nodes {
		order = append(order, n+": "+nginxTest, n+": "+nginxStart)
	}
	if !slices.Equal(journal, order) {
		t.Errorf("commands:\n got %q\nwant %q", journal, order)
	}
	var progress []string
	for _, l := range strings.Split(f.console.String(), "\n") {
		if strings.HasPrefix(l, "[lb] ") {
			progress = append(progress, strings.SplitN(strings.TrimPrefix(l, "[lb] "), " (", 2)[0])
		}
	}
	var wantProgress []string
	for _, n := range nodes {
		wantProgress = append(wantProgress, n+": /etc/nginx/nginx.conf, nginx started, listening on :6444")
	}
	if !slices.Equal(progress, wantProgress) {
		t.Errorf("progress:\n got %q\nwant %q", progress, wantProgress)
	}
	if done, why, err := check(ctx, LB{}, f.c); err != nil || !done {
		t.Errorf("plan after = %v, %q, %v", done, why, err)
	}
}

// TestLBNodeLocalStopsAtFirstBadNode: a node whose nginx refuses the
// configuration stops the phase there, before later nodes are touched.
func TestLBNodeLocalStopsAtFirstBadNode(t *testing.T) {
	t.Parallel()
	f := certifiedFixture(t, setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBMode: lb.ModeNodeLocal}})
	scriptNginx(f, "emei", false, nil)
	scriptNginx(f, "shaolin", true, nil)
	scriptNginx(f, "wudang", false, nil)
	f.serveAPIServer("shaolin", "emei>127.0.0.1:6444", http.StatusOK)
	wudangWrites := len(f.calls("wudang", node.CallWrite)) // the certs phase's
	err := apply(testCtx(t, 30*time.Second), LB{}, f.c)
	if err == nil || !strings.Contains(err.Error(), "node shaolin: /etc/nginx/nginx.conf, nginx started, listening on :6444: nginx refused the rendered configuration") {
		t.Fatalf("apply = %v", err)
	}
	if got := f.calls("wudang", node.CallRun); len(got) != 0 || len(f.calls("wudang", node.CallWrite)) != wudangWrites {
		t.Errorf("wudang touched after shaolin failed: %v", got)
	}
	if _, _, ok := f.fakes["shaolin"].File(nginxConf); ok {
		t.Error("shaolin got the refused nginx.conf")
	}
	if got := f.calls("emei", node.CallRun); !slices.Equal(got, []string{nginxTest, nginxStart}) {
		t.Errorf("emei, before shaolin: runs %q", got)
	}
}
