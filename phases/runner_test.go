package phases

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"net/http"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/manifests"
	"github.com/haadm/haadm/node"
)

// convergedLab is the lab after a whole promotion, applied phase by phase
// (etcd's new members are voters of a fake etcd: no unit test can start
// them), and the Cluster the next run discovers on it, with the same hosts.
func convergedLab(t *testing.T) (*fixture, *Cluster, *fakeEtcd) {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	f := certifiedFixture(t, setup{Worker: true})
	fe := f.useFakeEtcd(labVoters()...)
	f.serveAPIServer("emei", emeiIP+":6443", http.StatusOK)
	f.serveAPIServer("wudang", wudangIP+":6443", http.StatusOK)
	f.serveAPIServer("shaolin", emeiIP+":8443", http.StatusOK) // emei's nginx, forwarding to shaolin
	scriptNginx(f, "emei", false, nil)
	f.renewLeaseOnRestart()
	f.runBootstrapSigner()
	src, err := f.c.sourceFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	members := []manifests.Member{{Name: "shaolin", PeerURL: "https://10.250.0.11:2380"}, {Name: "emei", PeerURL: "https://10.250.0.12:2380"}, {Name: "wudang", PeerURL: "https://10.250.0.13:2380"}}
	for _, n := range f.c.New {
		y, err := manifests.Etcd(src.pods["etcd.yaml"], manifests.Node{Name: n.Name, IP: n.IP}, members)
		if err != nil {
			t.Fatal(err)
		}
		f.setFile(n.Name, manifestsDir+"/etcd.yaml", y)
	}
	for _, p := range []Phase{ControlPlane{}, Mark{}, LB{}, Kubelet{}, ClusterConfig{}} {
		if err := apply(ctx, p, f.c); err != nil {
			t.Fatalf("%s: %v", p.Name(), err)
		}
	}
	c, err := Discover(ctx, f.kube, f.c.Opts, true)
	if err != nil {
		t.Fatal(err)
	}
	c.Hosts, c.Log = maps.Clone(f.c.Hosts), f.c.Log
	fe.attach(c)
	return f, c, fe
}

// useCache puts a node.Cached in front of every host of c, as Execute
// does, so that Run prefetches what the plans read.
func useCache(c *Cluster) {
	c.cached = map[string]*node.Cached{}
	for name, h := range c.Hosts {
		c.cached[name] = node.NewCached(h)
		c.Hosts[name] = c.cached[name]
	}
}

// TestRunPrefetch: with hosts that cache (as Execute makes them), a run
// reads every node once before preflight, for every phase at once, and
// the plans cost nothing more: one ReadFiles and preflight's one command
// per node, on a fresh lab (dry run: every phase has work) as on a
// converged one.
func TestRunPrefetch(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		lab  func(t *testing.T) (*fixture, *Cluster)
		log  string
	}{
		{"fresh, dry run", func(t *testing.T) (*fixture, *Cluster) {
			f := newFixture(t, setup{Worker: true, Opts: Options{DryRun: true}})
			f.useFakeEtcd(voter(1, "shaolin", shaolinIP))
			return f, f.c
		}, "[plan] work in certs, etcd, control-plane, mark, lb, kubelet, cluster-config"},
		{"converged", func(t *testing.T) (*fixture, *Cluster) {
			f, c, _ := convergedLab(t)
			return f, c
		}, "[plan] nothing to do: every phase is done"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, c := tt.lab(t)
			useCache(c)
			before := f.snapshot()
			var out bytes.Buffer
			if err := Run(testCtx(t, 30*time.Second), c, All(), &out); err != nil {
				t.Fatal(err)
			}
			mustContain(t, f.console.String(), tt.log)
			for n := range f.fakes {
				got, calls := f.since(before, n)
				want := map[string]int{"ReadFiles": 1, "Output": 1}
				if c.isNew(n) {
					want["Output"] = 2 // images, and nginx -t on emei
				}
				if !maps.Equal(got, want) {
					t.Errorf("%s: round trips %v, want %v", n, got, want)
				}
				for _, c := range calls {
					if c.Kind == node.CallRun || c.Kind == node.CallWrite {
						t.Errorf("%s: %s %s%s", n, c.Kind, c.Cmd, c.Path)
					}
				}
			}
		})
	}
}

// TestKeysAhead: a fresh lab's plans make a key for each of a new
// master's seven certificates and three kubeconfigs; a converged one's
// make none; without a prefetch nothing is guessed.
func TestKeysAhead(t *testing.T) {
	t.Parallel()
	fresh := func(t *testing.T) *Cluster { return newFixture(t, setup{}).c }
	converged := func(t *testing.T) *Cluster { _, c, _ := convergedLab(t); return c }
	for _, tt := range []struct {
		name     string
		lab      func(t *testing.T) *Cluster
		list     []Phase
		prefetch bool
		want     int
	}{
		{"fresh", fresh, All(), true, 20},
		{"fresh, certs alone", fresh, []Phase{Certs{}}, true, 14},
		{"fresh, no prefetch", fresh, All(), false, 0},
		{"converged", converged, All(), true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.lab(t)
			useCache(c)
			if tt.prefetch {
				prefetch(t.Context(), c, tt.list)
			}
			if alg, n := keysAhead(t.Context(), c, tt.list); n != tt.want || (n > 0 && alg != certs.RSA2048) {
				t.Errorf("%d %s keys, want %d", n, alg, tt.want)
			}
		})
	}
}

// TestRunPrefetchFails: a node the prefetch cannot read costs only speed:
// the plans read for themselves, and the one that cannot says why.
func TestRunPrefetchFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Worker: true, Opts: Options{DryRun: true}})
	f.useFakeEtcd(voter(1, "shaolin", shaolinIP))
	f.fakes["wutai"].RemoveFile(kubeletConf)
	f.fakes["wutai"].SetFiles(node.File{Path: kubeletConf, Dir: true, Mode: 0o755})
	useCache(f.c)
	var out bytes.Buffer
	// A worker that cannot be planned does not stop the control plane's
	// plan: the dry run shows it with the reason.
	if err := Run(testCtx(t, 30*time.Second), f.c, All(), &out); err != nil {
		t.Fatal(err)
	}
	mustContain(t, out.String(), "[kubelet] wutai: kubelet.conf: cannot be planned: node wutai: reading "+kubeletConf+": is a directory")
	mustContain(t, f.detail.String(), "[prefetch] wutai: node wutai: reading "+kubeletConf+": is a directory")
	if got := f.meters["wutai"].counts()["ReadFiles"]; got != 2 {
		t.Errorf("wutai: %d ReadFiles, want the prefetch and the plan's own", got)
	}
}

// snapshot is what a fixture's nodes and API have seen so far.
type snapshot struct {
	counts    map[string]map[string]int
	calls     map[string]int
	mutations int
}

func (f *fixture) snapshot() snapshot {
	s := snapshot{counts: map[string]map[string]int{}, calls: map[string]int{}, mutations: len(f.mutations())}
	for n, m := range f.meters {
		s.counts[n] = m.counts()
		s.calls[n] = len(f.fakes[n].Calls())
	}
	return s
}

// since is what node saw after s: its round trips by method, dials left
// out, and its calls.
func (f *fixture) since(s snapshot, nodeName string) (map[string]int, []node.Call) {
	d := map[string]int{}
	for k, v := range f.meters[nodeName].counts() {
		if k != "Dial" && v != s.counts[nodeName][k] {
			d[k] = v - s.counts[nodeName][k]
		}
	}
	return d, f.fakes[nodeName].Calls()[s.calls[nodeName]:]
}

// TestRunConverged: `haadm promote` again on a promoted cluster: preflight,
// one plan per phase, every one empty; no backup, nothing changed. Every
// node sees exactly one round trip per phase that reads it (and preflight's
// one), so no phase was planned twice.
func TestRunConverged(t *testing.T) {
	t.Parallel()
	f, c, _ := convergedLab(t)
	before := f.snapshot()
	var out bytes.Buffer
	if err := Run(testCtx(t, 30*time.Second), c, All(), &out); err != nil {
		t.Fatal(err)
	}
	mustContain(t, f.console.String(), "[plan] nothing to do: every phase is done")
	if out.Len() != 0 || strings.Contains(f.console.String(), "[backup]") || strings.Contains(f.console.String(), "[promote] finished") {
		t.Errorf("output %q; console:\n%s", out.String(), f.console.String())
	}
	// Preflight's probe is the one command (lb takes nginx's state from
	// it); the rest are ReadFiles: shaolin's shared files (read once per
	// run), then one per phase: certs, kubelet, cluster-config (admin.conf)
	// on shaolin; certs, etcd, control-plane, lb, kubelet on emei (wudang
	// runs no nginx); kubelet on wutai.
	want := map[string]map[string]int{
		"shaolin": {"Output": 1, "ReadFiles": 4},
		"emei":    {"Output": 2, "ReadFiles": 5},
		"wudang":  {"Output": 2, "ReadFiles": 4},
		"wutai":   {"Output": 1, "ReadFiles": 1},
	}
	for n := range f.fakes {
		got, calls := f.since(before, n)
		if !maps.Equal(got, want[n]) {
			t.Errorf("%s: round trips %v, want %v", n, got, want[n])
		}
		for _, c := range calls {
			if c.Kind == node.CallRun || c.Kind == node.CallWrite {
				t.Errorf("%s: %s %s%s", n, c.Kind, c.Cmd, c.Path)
			}
		}
	}
	if m := f.mutations(); len(m) != before.mutations {
		t.Errorf("API changes: %v", m[before.mutations:])
	}
	if a, s := f.backups(); a+s != 0 {
		t.Errorf("backup: %d archives, %d snapshots", a, s)
	}

	// And its dry run has nothing to say.
	c.Opts.DryRun = true
	out.Reset()
	if err := Run(testCtx(t, 30*time.Second), c, All(), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "dry run: nothing to do\n" {
		t.Errorf("dry run printed %q", out.String())
	}
}

// TestPlanRoundTrips counts the round trips of planning every phase, one
// after the other after preflight (as Run does), on the fresh lab and on
// the converged one, without the prefetch (see TestRunPrefetch). The
// bound asserted: a phase's plan costs each node at most one round trip,
// one ReadFiles of every file it judges there (lb takes nginx's state from
// preflight, which also read the first master's shared files); never a
// single-file read, a write or a command. So a node costs at most one
// round trip per phase that reads it, whatever the number of files: 5 on
// the new master that runs nginx, 4 on the other, 3 on shaolin (certs,
// kubelet, cluster-config), 1 on a worker.
func TestPlanRoundTrips(t *testing.T) {
	t.Parallel()
	fresh := func(t *testing.T) (*fixture, *Cluster) {
		f := newFixture(t, setup{Worker: true})
		f.useFakeEtcd(voter(1, "shaolin", shaolinIP))
		scriptNginx(f, "emei", false, nil)
		return f, f.c
	}
	converged := func(t *testing.T) (*fixture, *Cluster) {
		f, c, _ := convergedLab(t)
		return f, c
	}
	for _, tt := range []struct {
		name  string
		lab   func(t *testing.T) (*fixture, *Cluster)
		empty bool
	}{{"fresh", fresh, false}, {"converged", converged, true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, c := tt.lab(t)
			ctx := testCtx(t, 30*time.Second)
			if err := Preflight(ctx, c); err != nil {
				t.Fatal(err)
			}
			total := map[string]int{}
			for _, p := range All() {
				before := f.snapshot()
				w := plan(t, ctx, p, c)
				// The captured lab reads nothing from the host beyond
				// kubeadm's own files, and no --etc-hosts is given: those
				// two phases have nothing to do on it.
				if w.Empty() != tt.empty && p.Name() != "host-files" && p.Name() != "etc-hosts" {
					t.Errorf("%s: Empty() = %v on the %s lab", p.Name(), w.Empty(), tt.name)
				}
				for n := range f.fakes {
					got, calls := f.since(before, n)
					trips := 0
					for k, v := range got {
						switch k {
						case "ReadFiles", "Output":
							trips += v
						default:
							t.Errorf("%s on %s: %d %s calls", p.Name(), n, v, k)
						}
					}
					if trips > 1 {
						t.Errorf("%s on %s: %d round trips %v, want at most one", p.Name(), n, trips, got)
					}
					for _, c := range calls {
						if c.Kind == node.CallRun || c.Kind == node.CallWrite {
							t.Errorf("%s on %s: planning made a %s call", p.Name(), n, c.Kind)
						}
					}
					total[n] += trips
				}
			}
			t.Logf("round trips of planning every phase: %v", total)
			if want := map[string]int{"shaolin": 3, "emei": 5, "wudang": 4, "wutai": 1}; !maps.Equal(total, want) {
				t.Errorf("round trips %v, want %v", total, want)
			}
		})
	}
}

// TestExecute is `haadm promote --dry-run` and `haadm phase etcd --dry-run`
// end to end: discover through the API, connect to the nodes a run needs
// (here the lab's fakes), plan, print, close every connection, and say
// what it cost: with the prefetch, two round trips per node (one read,
// preflight's probe), only the probe on a node no phase of the run reads.
// The etcd phase alone needs no load-balancer flags.
func TestExecute(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.startEtcd()
	scriptNginx(f, "emei", false, nil)
	var mu sync.Mutex // DialAll dials every node at once
	var dialled []string
	dial := func(_ context.Context, name string) (node.Host, error) {
		mu.Lock()
		defer mu.Unlock()
		dialled = append(dialled, name)
		return f.meters[name], nil
	}
	ctx := testCtx(t, 30*time.Second)
	for _, tt := range []struct {
		name    string
		opts    Options
		list    []Phase
		console []string
		out     []string
	}{
		{"promote", Options{Nodes: []string{"emei", "wudang"}, LBNode: "emei", DryRun: true}, All(),
			[]string{"[connect] ssh to shaolin, emei, wudang (", "[preflight] first master shaolin, promoting emei,wudang, endpoint 10.250.0.12:8443 (",
				"[ssh] 8 round trips (emei 3, shaolin 2, wudang 3), "},
			[]string{"dry run: 29 step(s); nothing was changed\n", "[lb] emei: /etc/nginx/nginx.conf, nginx started, listening on :8443\n"}},
		{"phase etcd", Options{Nodes: []string{"emei"}, DryRun: true}, []Phase{Etcd{}},
			[]string{"[connect] ssh to shaolin, emei, wudang (", "[preflight] first master shaolin, promoting emei, endpoint (not used by this phase) (",
				"[ssh] 6 round trips (emei 3, shaolin 2, wudang 1), "},
			[]string{"dry run: 5 step(s); nothing was changed\n", "[etcd] emei: etcd learner https://10.250.0.12:2380\n"}},
	} {
		var console, out bytes.Buffer
		dialled = nil
		if err := Execute(ctx, f.kube, dial, tt.opts, tt.list, NewProgress(&console, &bytes.Buffer{}), &out); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		mustContain(t, console.String(), tt.console...)
		mustContain(t, out.String(), tt.out...)
		if strings.Contains(out.String(), "control plane:") {
			t.Errorf("%s: a dry run reports the result of a promotion", tt.name)
		}
		slices.Sort(dialled)
		if !slices.Equal(dialled, []string{"emei", "shaolin", "wudang"}) {
			t.Errorf("%s: dialled %v", tt.name, dialled)
		}
		for n, h := range f.fakes {
			if !h.Closed() {
				t.Errorf("%s: %s left open", tt.name, n)
			}
		}
	}
	f.unchanged(t)
}

// TestExecuteUnreachable: a node haadm cannot reach stops the run before
// anything is read from a node, let alone changed, and the connections made
// are closed.
func TestExecuteUnreachable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	dial := func(_ context.Context, name string) (node.Host, error) {
		if name == "wudang" {
			return nil, errors.New("dial tcp 10.250.0.13:22: connect: no route to host")
		}
		return f.meters[name], nil
	}
	err := Execute(t.Context(), f.kube, dial, f.c.Opts, All(), NewProgress(&bytes.Buffer{}, &bytes.Buffer{}), &bytes.Buffer{})
	if err == nil {
		t.Fatal("Execute succeeded without wudang")
	}
	mustContain(t, err.Error(), "wudang", "no route to host", "nothing was changed; haadm needs SSH to every control-plane and load-balancer node")
	for n, h := range f.fakes {
		if n != "wudang" && !h.Closed() {
			t.Errorf("%s left open", n)
		}
		if trips := f.trips(n); trips != 0 {
			t.Errorf("%s: %d round trips", n, trips)
		}
	}
}

// TestExecuteUnreachableWorker: a worker that SSH cannot reach does not
// hold up the control plane: the run goes on without it and ends with an
// error that names it and says to re-run.
func TestExecuteUnreachableWorker(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Worker: true})
	f.startEtcd()
	scriptNginx(f, "emei", false, nil)
	dial := func(_ context.Context, name string) (node.Host, error) {
		if name == "wutai" {
			return nil, errors.New("dial tcp 10.250.0.14:22: connect: no route to host")
		}
		return f.meters[name], nil
	}
	var console, out bytes.Buffer
	opts := f.c.Opts
	opts.DryRun = true
	if err := Execute(testCtx(t, 30*time.Second), f.kube, dial, opts, All(), NewProgress(&console, &bytes.Buffer{}), &out); err != nil {
		t.Fatal(err)
	}
	mustContain(t, console.String(), "[connect] wutai: unreachable, left for a re-run")
	mustContain(t, out.String(), "note: worker wutai is not reached")
	// The control plane's plan is all there.
	mustContain(t, out.String(), "[etcd] emei: etcd learner", "[kubelet] emei: kubelet.conf")
	if strings.Contains(out.String(), "] wutai:") {
		t.Errorf("a plan for the unreachable worker:\n%s", out.String())
	}
	// A real run ends with an error that names it and says to re-run.
	if err := leftover(&Cluster{skipped: map[string]error{"wutai": errors.New("no route to host")}}, []string{"kubelet: node kunlun: timed out"}); err == nil {
		t.Error("no error for workers left out")
	} else {
		mustContain(t, err.Error(), "the control plane is done, but 2 worker(s) are left for a re-run", "node wutai: not reached: no route to host", "node kunlun: timed out")
	}
}

// TestOverlap: the second phase starts on a node once the first has passed
// that node's Gate, while the first goes on: here wudang's join waits for
// emei's control plane to have started, which would never happen phase
// after phase. A node the first has no Gate for starts at once.
func TestOverlap(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	emeiCP := make(chan struct{})
	gated := func(s Step) Step { s.Gate = true; return s }
	first := &Work{Steps: []Step{
		r.step("emei", "learner", nil),
		gated(r.step("emei", "promoted", nil)),
		{Node: "wudang", What: "learner", Do: func(ctx context.Context) error {
			select {
			case <-emeiCP:
				return nil
			case <-time.After(10 * time.Second):
				return errors.New("emei's control plane did not start before wudang joined")
			}
		}},
		gated(r.step("wudang", "promoted", nil)),
	}}
	var emeiPromoted atomic.Bool
	first.Steps[1].Do = func(context.Context) error { emeiPromoted.Store(true); return nil }
	second := &Work{PerNode: true, Steps: []Step{
		{Node: "emei", What: "files", Do: func(context.Context) error {
			if !emeiPromoted.Load() {
				return errors.New("emei's control plane started before its member was a voter")
			}
			close(emeiCP)
			return nil
		}},
		r.step("wudang", "files", nil),
		r.step("kunlun", "files", nil),
	}}
	var out bytes.Buffer
	if err := overlap(t.Context(), NewProgress(&out, &bytes.Buffer{}), "etcd", first, "control-plane", second); err != nil {
		t.Fatal(err)
	}
	got := r.got()
	if i, j := slices.Index(got, "wudang: promoted"), slices.Index(got, "wudang: files"); i < 0 || j < i {
		t.Errorf("order %q: wudang's files before its promotion", got)
	}
	if !slices.Contains(got, "kunlun: files") {
		t.Errorf("order %q: kunlun, with nothing to wait for, did not run", got)
	}
	mustContain(t, out.String(), "[etcd] done", "[control-plane] done (alongside etcd)")
	// The plans are left as they were: the same work overlapped again
	// runs again, its gates new.
	emeiCP = make(chan struct{})
	second.Steps[0].Do = func(context.Context) error { close(emeiCP); return nil }
	if err := overlap(t.Context(), NewProgress(&bytes.Buffer{}, &bytes.Buffer{}), "etcd", first, "control-plane", second); err != nil {
		t.Fatalf("the same work again: %v", err)
	}
}

// TestOverlapStopsWaits: when the first phase fails, the second's waits
// stop at once instead of running out their time (an apiserver waiting
// for an etcd that just failed would hold the error back for minutes).
func TestOverlapStopsWaits(t *testing.T) {
	t.Parallel()
	first := &Work{Steps: []Step{
		{Node: "emei", What: "promoted", Gate: true, Do: func(context.Context) error { return nil }},
		{Node: "wudang", What: "learner", Do: func(context.Context) error {
			time.Sleep(100 * time.Millisecond)
			return errors.New("member add refused")
		}},
	}}
	second := &Work{PerNode: true, Steps: []Step{
		{Node: "emei", What: "kube-apiserver ready", Wait: true, Do: func(ctx context.Context) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Minute):
				return errors.New("waited out its time")
			}
		}},
	}}
	t0 := time.Now()
	err := overlap(t.Context(), NewProgress(&bytes.Buffer{}, &bytes.Buffer{}), "etcd", first, "control-plane", second)
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("overlap returned after %s", took)
	}
	if err == nil {
		t.Fatal("overlap succeeded")
	}
	mustContain(t, err.Error(), "member add refused", "node emei: kube-apiserver ready: stopped waiting: phase etcd failed")
}

// TestOverlapOptionalGate: an Optional Gate step that fails leaves the
// first phase done but its node's second phase not started, which is an
// error, not "done".
func TestOverlapOptionalGate(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	first := &Work{Steps: []Step{
		{Node: "emei", What: "promoted", Gate: true, Optional: true, Do: func(context.Context) error { return errors.New("no") }},
	}}
	second := &Work{PerNode: true, Steps: []Step{r.step("emei", "files", nil)}}
	var out bytes.Buffer
	err := overlap(t.Context(), NewProgress(&out, &bytes.Buffer{}), "etcd", first, "control-plane", second)
	if err == nil || !strings.Contains(err.Error(), "not started on emei") {
		t.Fatalf("overlap = %v", err)
	}
	if len(r.got()) != 0 || strings.Contains(out.String(), "[control-plane] done") {
		t.Errorf("emei's control plane ran (%q) or was reported done:\n%s", r.got(), out.String())
	}
	if len(first.Left) != 1 {
		t.Errorf("first.Left = %q, want the Optional failure", first.Left)
	}
}

// TestOverlapFirstFails: when the first phase fails before a node's Gate,
// the second never starts there, what it started elsewhere finishes, and
// the error names both phases' failures and says how to resume.
func TestOverlapFirstFails(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	release := make(chan struct{})
	first := &Work{Steps: []Step{
		{Node: "emei", What: "promoted", Gate: true, Do: func(context.Context) error { return nil }},
		{Node: "wudang", What: "learner", Do: func(context.Context) error { <-release; return errors.New("member add refused") }},
		{Node: "wudang", What: "promoted", Gate: true, Do: func(context.Context) error { return nil }},
	}}
	second := &Work{PerNode: true, Steps: []Step{
		{Node: "emei", What: "files", Do: func(context.Context) error { close(release); return nil }},
		r.step("emei", "apiserver ready", errors.New("timed out")),
		r.step("wudang", "files", nil),
	}}
	var out bytes.Buffer
	err := overlap(t.Context(), NewProgress(&out, &bytes.Buffer{}), "etcd", first, "control-plane", second)
	if err == nil {
		t.Fatal("overlap succeeded")
	}
	mustContain(t, err.Error(), "phase etcd: node wudang: learner: member add refused", "phase control-plane: node emei: apiserver ready: timed out", resumeHint)
	if got := r.got(); slices.Contains(got, "wudang: files") || !slices.Contains(got, "emei: apiserver ready") {
		t.Errorf("ran %q: want emei's control plane to the end, nothing of wudang's", got)
	}
	if strings.Contains(out.String(), "] done") {
		t.Errorf("a failed overlap reported a phase done:\n%s", out.String())
	}
}

// TestFollows: only a phase that says so, planned per node and not
// depending on what the first one changes, runs alongside it.
func TestFollows(t *testing.T) {
	t.Parallel()
	perNode := &Work{PerNode: true, Steps: []Step{{Node: "emei", What: "files", Do: func(context.Context) error { return nil }}}}
	inOrder := &Work{Steps: perNode.Steps}
	for _, tt := range []struct {
		name       string
		next, prev Phase
		plan       *Work
		want       bool
	}{
		{"control-plane after etcd", ControlPlane{}, Etcd{}, perNode, true},
		{"control-plane restarting running apiservers", ControlPlane{}, Etcd{}, inOrder, false},
		{"control-plane with nothing to do", ControlPlane{}, Etcd{}, &Work{}, false},
		{"control-plane after another phase", ControlPlane{}, HostFiles{}, perNode, false},
		{"etcd, which follows no phase", Etcd{}, HostFiles{}, perNode, false},
	} {
		if got := follows(tt.next, tt.prev, tt.plan, map[string]bool{}); got != tt.want {
			t.Errorf("%s: follows = %v", tt.name, got)
		}
	}
}
