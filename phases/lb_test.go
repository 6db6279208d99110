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
)

// scriptNginx makes a node's systemd and nginx behave: nginx is inactive
// until started, and accepts any configuration unless refuse is set.
func scriptNginx(f *fixture, nodeName string, refuse bool) {
	var mu sync.Mutex
	active := false
	f.fakes[nodeName].SetHandler(func(cmd string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		switch cmd {
		case nginxIsActive:
			if active {
				return "active\n", nil
			}
			return "", &node.CmdError{Node: nodeName, Cmd: cmd, ExitCode: 3, Stdout: []byte("inactive\n")}
		case nginxTest:
			if refuse {
				return "", &node.CmdError{Node: nodeName, Cmd: cmd, ExitCode: 1, Stderr: []byte(`nginx: [emerg] unknown directive "stream" in /etc/nginx/.haadm-nginx.conf.new:12`)}
			}
			return "", nil
		case nginxStart:
			active = true
			return "", nil
		case nginxReload:
			return "", nil
		}
		return "", &node.CmdError{Node: nodeName, Cmd: cmd, ExitCode: 127, Stderr: []byte("unexpected command")}
	})
}

// TestLB installs nginx on emei in front of the three apiservers, starts
// it, and waits until /readyz answers through it with a certificate valid
// for the endpoint. A changed configuration is reloaded, not restarted.
func TestLB(t *testing.T) {
	f := certifiedFixture(t, setup{})
	scriptNginx(f, "emei", false)
	// nginx forwards to an apiserver; shaolin's re-issued certificate
	// covers the endpoint 10.250.0.12.
	f.serveAPIServer("shaolin", emeiIP+":8443", http.StatusOK)
	ctx := testCtx(t, 30*time.Second)

	done, why, err := LB{}.Check(ctx, f.c)
	if err != nil || done || why != "emei: /etc/nginx/nginx.conf differs" {
		t.Fatalf("Check before = %v, %q, %v", done, why, err)
	}
	if err := (LB{}).Apply(ctx, f.c); err != nil {
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
	if d := f.calls("emei", node.CallDial); !slices.Contains(d, "tcp 10.250.0.12:8443") {
		t.Errorf("emei dials = %v: the LB is asked from its own node", d)
	}
	for _, n := range []string{"shaolin", "wudang"} {
		if w := f.calls(n, node.CallRun); len(w) != 0 {
			t.Errorf("%s ran %v", n, w)
		}
	}
	mustContain(t, f.console.String(), "[lb] emei: nginx started, listening on :8443", "[lb] emei: load balancer 10.250.0.12:8443 answers /readyz")

	done, why, err = LB{}.Check(ctx, f.c)
	if err != nil || !done {
		t.Fatalf("Check after = %v, %q, %v", done, why, err)
	}
	runs, writes := len(f.calls("emei", node.CallRun)), len(f.calls("emei", node.CallWrite))
	if err := (LB{}).Apply(ctx, f.c); err != nil {
		t.Fatal(err)
	}
	if len(f.calls("emei", node.CallRun)) != runs || len(f.calls("emei", node.CallWrite)) != writes {
		t.Error("second Apply changed emei")
	}

	// An operator edited the file: it is put back and nginx reloaded.
	f.setFile("emei", nginxConf, []byte(strings.Replace(string(conf), "10.250.0.13:6443", "10.250.0.99:6443", 1)))
	if err := (LB{}).Apply(ctx, f.c); err != nil {
		t.Fatal(err)
	}
	if got := f.calls("emei", node.CallRun)[runs:]; !slices.Equal(got, []string{nginxTest, nginxReload}) {
		t.Errorf("after an edit: runs %q, want test and reload", got)
	}
	if now, _ := f.file("emei", nginxConf); string(now) != string(conf) {
		t.Error("nginx.conf not restored")
	}
}

// TestLBRefusedConfig: a configuration nginx refuses never replaces the
// working one.
func TestLBRefusedConfig(t *testing.T) {
	f := newFixture(t, setup{})
	scriptNginx(f, "emei", true)
	f.setFile("emei", nginxConf, []byte("# the operator's working nginx.conf\n"))
	err := LB{}.Apply(testCtx(t, 10*time.Second), f.c)
	if err == nil {
		t.Fatal("Apply succeeded with a refused configuration")
	}
	mustContain(t, err.Error(), "node emei: nginx refused the rendered configuration", `unknown directive "stream"`)
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
func TestLBModeNone(t *testing.T) {
	opts := Options{Nodes: []string{"emei", "wudang"}, LBMode: "none", Endpoint: "k8s-api.lab:6443"}
	before := newFixture(t, setup{Opts: opts})
	before.serveAPIServer("shaolin", "k8s-api.lab:6443", http.StatusOK)
	done, why, err := LB{}.Check(t.Context(), before.c)
	if err != nil || done {
		t.Fatalf("before the certs phase: %v, %q, %v", done, why, err)
	}
	mustContain(t, why, "x509", "run `haadm phase certs`")

	f := certifiedFixture(t, setup{Opts: opts})
	srv := f.serveAPIServer("wudang", "k8s-api.lab:6443", http.StatusServiceUnavailable)
	done, why, err = LB{}.Check(t.Context(), f.c)
	if err != nil || done || !strings.HasPrefix(why, "/readyz 503: ") {
		t.Errorf("an LB whose apiserver is not ready: %v, %q, %v", done, why, err)
	}
	srv.Close()
	f.serveAPIServer("shaolin", "k8s-api.lab:6443", http.StatusOK)
	done, why, err = LB{}.Check(t.Context(), f.c)
	if err != nil || !done {
		t.Fatalf("after the certs phase: %v, %q, %v", done, why, err)
	}
	if err := (LB{}).Apply(testCtx(t, 10*time.Second), f.c); err != nil {
		t.Fatal(err)
	}
	if d := f.calls("shaolin", node.CallDial); len(d) == 0 || d[0] != "tcp k8s-api.lab:6443" {
		t.Errorf("shaolin dials = %v", d)
	}
	for n := range f.fakes {
		if len(f.calls(n, node.CallRun)) != 0 || slices.Contains(f.calls(n, node.CallWrite), nginxConf) {
			t.Errorf("%s: nginx touched in --lb-mode none", n)
		}
	}
}

// TestLBNodeLocal: nginx on 127.0.0.1:6444 of every node, installed and
// checked one node at a time, each node's /readyz asked through its own
// nginx for the name localhost (which the certs phase added).
func TestLBNodeLocal(t *testing.T) {
	f := certifiedFixture(t, setup{Worker: true, Opts: Options{Nodes: []string{"emei", "wudang"}, LBMode: "node-local"}})
	nodes := []string{"emei", "shaolin", "wudang", "wutai"}
	for _, n := range nodes {
		scriptNginx(f, n, false)
		// Each node's nginx forwards to an apiserver; shaolin's answers.
		f.serveAPIServer("shaolin", n+">127.0.0.1:6444", http.StatusOK)
	}
	ctx := testCtx(t, 30*time.Second)
	done, why, err := LB{}.Check(ctx, f.c)
	if err != nil || done || why != "emei: /etc/nginx/nginx.conf differs, shaolin: /etc/nginx/nginx.conf differs, wudang: /etc/nginx/nginx.conf differs, wutai: /etc/nginx/nginx.conf differs" {
		t.Fatalf("Check before = %v, %q, %v", done, why, err)
	}
	if err := (LB{}).Apply(ctx, f.c); err != nil {
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
	// One node at a time: a node's nginx answers before the next is touched.
	var order []string
	for _, l := range strings.Split(f.console.String(), "\n") {
		if strings.HasPrefix(l, "[lb] ") {
			order = append(order, strings.SplitN(strings.TrimPrefix(l, "[lb] "), " (", 2)[0])
		}
	}
	var want []string
	for _, n := range nodes {
		want = append(want, n+": wrote /etc/nginx/nginx.conf", n+": nginx started, listening on :6444", n+": load balancer localhost:6444 answers /readyz")
	}
	if !slices.Equal(order, want) {
		t.Errorf("progress:\n got %q\nwant %q", order, want)
	}
	if done, why, err := (LB{}).Check(ctx, f.c); err != nil || !done {
		t.Errorf("Check after = %v, %q, %v", done, why, err)
	}
}

// TestLBNodeLocalStopsAtFirstBadNode: a node whose nginx refuses the
// configuration stops the phase there, before later nodes are touched.
func TestLBNodeLocalStopsAtFirstBadNode(t *testing.T) {
	f := certifiedFixture(t, setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBMode: "node-local"}})
	scriptNginx(f, "emei", false)
	scriptNginx(f, "shaolin", true)
	scriptNginx(f, "wudang", false)
	f.serveAPIServer("shaolin", "emei>127.0.0.1:6444", http.StatusOK)
	wudangWrites := len(f.calls("wudang", node.CallWrite)) // the certs phase's
	err := LB{}.Apply(testCtx(t, 30*time.Second), f.c)
	if err == nil || !strings.Contains(err.Error(), "node shaolin: nginx refused the rendered configuration") {
		t.Fatalf("Apply = %v", err)
	}
	if got := f.calls("wudang", node.CallRun); len(got) != 0 || len(f.calls("wudang", node.CallWrite)) != wudangWrites {
		t.Errorf("wudang touched after shaolin failed: %v", got)
	}
	if _, _, ok := f.fakes["shaolin"].File(nginxConf); ok {
		t.Error("shaolin got the refused nginx.conf")
	}
}
