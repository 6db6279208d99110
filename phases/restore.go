package phases

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/haadm/haadm/backup"
	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/manifests"
	"github.com/haadm/haadm/node"
)

// RestoreOptions are what `haadm restore` was asked.
type RestoreOptions struct {
	// Dir is a local backup directory Backup wrote.
	Dir string
	// EtcdOnly restores the etcd snapshot and leaves every node's
	// /etc/kubernetes as it is now.
	EtcdOnly bool
	DryRun   bool
}

// restoreJournal is restore.json in the backup directory: the stamp of the
// restore in progress and the steps it finished, so that running the same
// restore again after a failure resumes it instead of starting over (a
// second "stop the control plane" after the manifests came back would undo
// the restore's own work).
type restoreJournal struct {
	Stamp    string    `json:"stamp"`
	Started  time.Time `json:"started"`
	Done     []string  `json:"done"`
	Finished bool      `json:"finished"`
}

const restoreJournalFile = "restore.json"

// etcdMember is the first master's etcd as its manifest in the backup
// describes it.
type etcdMember struct {
	name, peerURL, clientURL, dataDir string
	ip                                string // the host of clientURL
}

// restore is one run of `haadm restore`: the backup, the nodes, and what
// is already done.
type restore struct {
	opts    RestoreOptions
	m       *backup.Manifest
	stamp   string // of the backup
	hosts   map[string]node.Host
	log     *Progress
	member  etcdMember
	journal restoreJournal
	mu      sync.Mutex
	// waitEtcd and waitAPI wait for the first master's etcd and apiserver
	// once the kubelets restarted; tests replace them.
	waitEtcd, waitAPI func(ctx context.Context) error
}

// LoadRestore reads the backup in dir and checks that it can be restored
// from: a manifest haadm wrote, a snapshot whose sha256 matches it, and the
// first master's etcd manifest. It reads nothing but local files.
func LoadRestore(opts RestoreOptions) (*restore, error) {
	m, err := backup.Load(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("%s is not a backup haadm can restore: %w; nothing was changed", opts.Dir, err)
	}
	snap := filepath.Join(opts.Dir, backup.SnapshotFile)
	size, sum, err := hashFile(snap)
	if err != nil {
		return nil, fmt.Errorf("etcd snapshot: %w; nothing was changed", err)
	}
	if size != m.Snapshot.Size || sum != m.Snapshot.SHA256 {
		return nil, fmt.Errorf("%s: %d bytes with sha256 %s, but the manifest recorded %d bytes with sha256 %s: the snapshot is damaged or not this backup's; nothing was changed",
			snap, size, sum, m.Snapshot.Size, m.Snapshot.SHA256)
	}
	src, err := os.ReadFile(filepath.Join(opts.Dir, backup.EtcdManifestFile))
	if err != nil {
		return nil, fmt.Errorf("the first master's etcd manifest: %w; nothing was changed", err)
	}
	mem, err := etcdMemberOf(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; nothing was changed", filepath.Join(opts.Dir, backup.EtcdManifestFile), err)
	}
	r := &restore{opts: opts, m: m, stamp: filepath.Base(filepath.Clean(opts.Dir)), member: mem}
	r.waitEtcd, r.waitAPI = r.etcdAnswers, r.apiserverAnswers
	return r, nil
}

func hashFile(p string) (int64, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return n, "", fmt.Errorf("reading %s: %w", p, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// etcdMemberOf reads the member's name, peer URL, client URL and data dir
// from an etcd static pod manifest, as etcd itself would.
func etcdMemberOf(src []byte) (etcdMember, error) {
	pod, err := manifests.Decode(src)
	if err != nil {
		return etcdMember{}, err
	}
	flag := func(name string) string {
		v, _ := manifests.Flag(pod, name)
		return strings.Split(v, ",")[0]
	}
	mem := etcdMember{name: flag("name"), peerURL: flag("initial-advertise-peer-urls"), clientURL: flag("advertise-client-urls"), dataDir: flag("data-dir")}
	if mem.dataDir == "" {
		mem.dataDir = "/var/lib/etcd" // etcd's default is relative to its cwd; kubeadm always sets it
	}
	u, err := url.Parse(mem.clientURL)
	if mem.name == "" || mem.peerURL == "" || err != nil || u.Hostname() == "" || !filepath.IsAbs(mem.dataDir) {
		return mem, fmt.Errorf("etcd manifest lacks --name, --initial-advertise-peer-urls, --advertise-client-urls or an absolute --data-dir (%+v)", mem)
	}
	mem.ip = u.Hostname()
	return mem, nil
}

// Nodes are the nodes of the backup: every node it archived, and the first
// master.
func (r *restore) Nodes() []string {
	names := slices.Collect(func(yield func(string) bool) {
		for n := range r.m.Archives {
			if !yield(n) {
				return
			}
		}
	})
	if !slices.Contains(names, r.m.FirstMaster) {
		names = append(names, r.m.FirstMaster)
	}
	slices.Sort(names)
	return names
}

// Restore is `haadm restore`: load and check the backup, connect to its
// nodes, plan, and print the plan (dry run) or apply it.
func Restore(ctx context.Context, dial node.DialFunc, opts RestoreOptions, log *Progress, out io.Writer) error {
	r, err := LoadRestore(opts)
	if err != nil {
		return err
	}
	t0 := time.Now()
	want := r.Nodes()
	hosts, err := node.DialAll(ctx, want, 20*time.Second, dial)
	if err != nil {
		_ = node.CloseAll(hosts)
		var ue *node.UnreachableError
		if errors.As(err, &ue) && ue.Errs[r.m.FirstMaster] != nil {
			return fmt.Errorf("%w\nnothing was changed; the backup's first master %s must be reachable: its etcd is the one restored", err, r.m.FirstMaster)
		}
		return fmt.Errorf("%w\nnothing was changed; restore stops the control plane on every node of the backup and needs SSH to all of them (check --ssh-config and known_hosts)", err)
	}
	defer node.CloseAll(hosts)
	log.Step("connect", "", time.Since(t0), "ssh to "+strings.Join(want, ", "))
	return r.Run(ctx, hosts, log, out)
}

// Run plans the restore on hosts (reading only), then prints or applies
// the plan.
func (r *restore) Run(ctx context.Context, hosts map[string]node.Host, log *Progress, out io.Writer) error {
	r.hosts, r.log = hosts, log
	if err := r.loadJournal(); err != nil {
		return err
	}
	w, err := r.Plan(ctx)
	if err != nil {
		return err
	}
	if r.opts.DryRun {
		if w.Empty() {
			fmt.Fprintln(out, "dry run: nothing to do")
			return nil
		}
		fmt.Fprintf(out, "dry run: restore %s (%s, taken by haadm %s) in %d step(s); nothing was changed\n", r.opts.Dir, r.m.Started.Format(time.RFC3339), r.m.Command, len(w.Steps))
		for _, s := range w.Steps {
			fmt.Fprintln(out, line("restore", s.Node, s.What, 0))
			for _, d := range s.Details {
				fmt.Fprintln(out, "    "+strings.ReplaceAll(strings.TrimRight(d, "\n"), "\n", "\n    "))
			}
		}
		return nil
	}
	if err := r.saveJournal(); err != nil {
		return err
	}
	t0 := time.Now()
	if err := w.apply(ctx, "restore", log); err != nil {
		return fmt.Errorf("restore: %w\n(run the same restore again to resume: the steps done are recorded in %s)", err, filepath.Join(r.opts.Dir, restoreJournalFile))
	}
	r.journal.Finished = true
	if err := r.saveJournal(); err != nil {
		return err
	}
	log.Step("restore", "", time.Since(t0), "finished")
	r.printNext(out)
	return nil
}

// loadJournal picks up an unfinished restore of this backup, or starts a
// new one with a stamp of its own.
func (r *restore) loadJournal() error {
	b, err := os.ReadFile(filepath.Join(r.opts.Dir, restoreJournalFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		var j restoreJournal
		if err := json.Unmarshal(b, &j); err != nil {
			return fmt.Errorf("%s: %w (remove it to start the restore over)", filepath.Join(r.opts.Dir, restoreJournalFile), err)
		}
		if !j.Finished {
			r.journal = j
			r.log.Step("restore", "", 0, fmt.Sprintf("resuming the restore begun %s (%d step(s) done)", j.Started.Format(time.RFC3339), len(j.Done)))
			return nil
		}
	}
	now := time.Now().UTC()
	r.journal = restoreJournal{Stamp: now.Format(backup.StampLayout), Started: now}
	return nil
}

func (r *restore) saveJournal() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := json.MarshalIndent(r.journal, "", "  ")
	if err != nil {
		return err
	}
	return backup.WriteFile(filepath.Join(r.opts.Dir, restoreJournalFile), append(b, '\n'))
}

func stepKey(s Step) string { return s.Node + ": " + s.What }

// Plan checks, changing nothing, that every node can be restored, and
// returns the steps not done yet, each recording itself in the journal
// when it is done.
func (r *restore) Plan(ctx context.Context) (*Work, error) {
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	all := r.steps()
	w := &Work{}
	for _, s := range all {
		if slices.Contains(r.journal.Done, stepKey(s)) {
			continue
		}
		do := s.Do
		s.Do = func(ctx context.Context) error {
			if err := do(ctx); err != nil {
				return err
			}
			r.mu.Lock()
			r.journal.Done = append(r.journal.Done, stepKey(s))
			r.mu.Unlock()
			return r.saveJournal()
		}
		w.add(s)
	}
	return w, nil
}

// check refuses, before anything changes, a backup whose node archives are
// gone (unless only etcd is restored).
func (r *restore) check(ctx context.Context) error {
	if r.opts.EtcdOnly {
		return nil
	}
	// The paths go into the scripts that empty and unpack them.
	for n, a := range r.m.Archives {
		for _, p := range a.Paths {
			if p != "etc/kubernetes" && !slices.Contains(lbPaths(), p) {
				return fmt.Errorf("the backup's manifest names %q in node %s's archive: haadm only restores etc/kubernetes and /%s (nothing was changed)", p, n, strings.Join(lbPaths(), ", /"))
			}
		}
	}
	names := keys(r.m.Archives)
	missing := make([]string, len(names))
	if err := forEach(len(names), func(i int) error {
		a := r.m.Archives[names[i]]
		out, err := r.hosts[names[i]].Output(ctx, "if test -s "+node.ShellQuote(a.Path)+"; then echo present; else echo missing; fi")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "present" {
			missing[i] = fmt.Sprintf("node %s: %s is missing or empty", names[i], a.Path)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%w\n(nothing was changed)", err)
	}
	missing = slices.DeleteFunc(missing, func(s string) bool { return s == "" })
	if len(missing) > 0 {
		return fmt.Errorf("the backup's node archives are not all there:\n  - %s\nnothing was changed; --etcd-only restores etcd alone and leaves every node's /etc/kubernetes as it is", strings.Join(missing, "\n  - "))
	}
	return nil
}

// steps are the restore's steps in order, each safe to repeat.
func (r *restore) steps() []Step {
	first := r.m.FirstMaster
	s := r.journal.Stamp
	held := controlplane.ManifestsDir + "/../haadm-restore-" + s
	held = filepath.Clean(held) // /etc/kubernetes/haadm-restore-<stamp>
	data := r.member.dataDir
	port := r.m.APIServerPort
	if port == 0 {
		port = controlplane.DefaultAPIServerPort
	}
	var steps []Step
	// Restored and shipped first, while everything still runs: a snapshot
	// etcd's restore refuses must not leave the control plane stopped.
	restored := restoreDir(s) + "/etcd-restored"
	steps = append(steps, Step{Node: first, What: "etcd snapshot restored as member " + r.member.name + " (" + r.member.peerURL + ") into " + restored,
		Details: []string{fmt.Sprintf("etcdutl snapshot restore %s --name %s --initial-advertise-peer-urls %s --initial-cluster %s=%s --bump-revision %d --mark-compacted (on this machine), then shipped as a tar stream",
			filepath.Join(r.opts.Dir, backup.SnapshotFile), r.member.name, r.member.peerURL, r.member.name, r.member.peerURL, etcdm.RestoreRevisionBump)},
		Do: func(ctx context.Context) error { return r.shipRestored(ctx, restored) }})
	for _, n := range r.Nodes() {
		cmd := stopScript(held)
		steps = append(steps, Step{Node: n, What: "stop the control plane: static pod manifests moved to " + held, Details: []string{cmd}, Batch: true,
			Do: func(ctx context.Context) error { _, err := r.hosts[n].Run(ctx, cmd); return err }})
	}
	for _, n := range r.Nodes() {
		what := fmt.Sprintf("etcd (port %d) and the apiserver (port %d) stopped listening", controlplane.EtcdClientPort, port)
		// Not Batch: every stop above has run by now, so waiting for one
		// node after another takes no longer than waiting for all at once.
		steps = append(steps, Step{Node: n, What: what, Do: func(ctx context.Context) error {
			return waitFor(ctx, r.log, "restore", n, what, 3*time.Minute, func(ctx context.Context) (bool, string, error) {
				out, err := r.hosts[n].Output(ctx, "ss -Hltn")
				if err != nil {
					return false, "", err
				}
				if l := listening(out, controlplane.EtcdClientPort, port); len(l) > 0 {
					return false, "still listening on " + strings.Join(l, ", "), nil
				}
				return true, "", nil
			})
		}})
	}
	swap := swapScript(data, s)
	steps = append(steps, Step{Node: first, What: "restored etcd data in place of " + data + " (the current one kept in " + restoreDir(s) + "/etcd-data)", Details: []string{swap},
		Do: func(ctx context.Context) error { _, err := r.hosts[first].Run(ctx, swap); return err }})
	if !r.opts.EtcdOnly {
		for _, n := range r.Nodes() {
			a, ok := r.m.Archives[n]
			if !ok {
				continue
			}
			paths := a.Paths
			if len(paths) == 0 {
				paths = []string{"etc/kubernetes"}
			}
			role := "worker"
			if slices.Contains(r.m.ControlPlanes, n) {
				role = "control plane"
			}
			cmd := unpackScript(a.Path, paths, s, data, n == first, role == "control plane", held, port)
			what := "/" + strings.Join(paths, " /") + " restored from " + a.Path + " (a " + role + " then; the current ones kept in " + restoreDir(s) + ")"
			steps = append(steps, Step{Node: n, What: what, Details: []string{cmd}, Batch: true,
				Do: func(ctx context.Context) error { _, err := r.hosts[n].Run(ctx, cmd); return err }})
		}
	} else {
		// The other members' data would start a second, stale etcd the
		// day their manifests come back.
		for _, n := range r.Nodes() {
			if n == first {
				continue
			}
			cmd := dataAsideScript(data, s)
			steps = append(steps, Step{Node: n, What: "etcd data moved aside to " + restoreDir(s) + "/etcd-data", Details: []string{cmd}, Batch: true,
				Do: func(ctx context.Context) error { _, err := r.hosts[n].Run(ctx, cmd); return err }})
		}
		cmd := unholdScript(held)
		steps = append(steps, Step{Node: first, What: "static pod manifests back from " + held, Details: []string{cmd},
			Do: func(ctx context.Context) error { _, err := r.hosts[first].Run(ctx, cmd); return err }})
	}
	for _, n := range r.Nodes() {
		// One after another, and not Batch: Batch steps next to the
		// unpacking would run alongside it.
		steps = append(steps, Step{Node: n, What: "restart kubelet", Details: []string{"systemctl restart kubelet"},
			Do: func(ctx context.Context) error {
				_, err := r.hosts[n].Run(ctx, "systemctl restart kubelet")
				return err
			}})
	}
	steps = append(steps,
		Step{Node: first, What: "etcd answers at " + r.member.clientURL, Do: func(ctx context.Context) error { return r.waitEtcd(ctx) }},
		Step{Node: first, What: "apiserver answers /readyz at " + controlplane.HostPort(r.member.ip, port), Do: func(ctx context.Context) error { return r.waitAPI(ctx) }},
	)
	return steps
}

// stopScript moves the control plane's static pod manifests aside, which
// makes the kubelet stop those pods; the operator's own static pods (a
// kube-vip, say) keep running. A node without them has nothing to move.
func stopScript(held string) string {
	return strings.Join([]string{
		"set -e",
		"m=" + controlplane.ManifestsDir + "; d=" + node.ShellQuote(held),
		`mkdir -p -- "$d"`,
		`chmod 700 -- "$d"`,
		`for f in ` + strings.Join(staticPods(), " ") + `; do if [ -e "$m/$f" ]; then mv -f -- "$m/$f" "$d"/; fi; done`,
	}, "\n")
}

// restoreDir is where a restore keeps, on each node, what it replaced and
// the data it ships: under /var/lib/haadm, beside nothing of kubeadm's, on
// the node's own disk, never deleted by haadm.
func restoreDir(stamp string) string { return "/var/lib/haadm/restore-" + stamp }

// mkRestoreDir makes it, root's eyes only: it holds keys.
func mkRestoreDir(stamp string) string {
	return "mkdir -p " + restoreDir(stamp) + " && chmod 700 /var/lib/haadm " + restoreDir(stamp)
}

// etcdGoneScript waits until no etcd runs on data: etcd closes its ports
// first and writes its WAL until it exits, so data moved while it shuts
// down comes back half.
func etcdGoneScript(data string) string {
	// "[/]var/..." matches etcd's argument but not this script's own.
	pat := node.ShellQuote("--data-dir=[" + data[:1] + "]" + data[1:])
	return `for i in $(seq 60); do pgrep -f -- ` + pat + ` >/dev/null || break; sleep 1; done; if pgrep -f -- ` + pat + ` >/dev/null; then echo "etcd on ` + data + ` still runs a minute after its manifest went: not moving its data" >&2; exit 1; fi`
}

// dataAsideScript moves a node's etcd member data aside (its contents: the
// data dir may be a mount).
func dataAsideScript(data, stamp string) string {
	return mkRestoreDir(stamp) + "; d=" + node.ShellQuote(data) + "; b=" + restoreDir(stamp) + "/etcd-data; if [ -n \"$(ls -A \"$d\" 2>/dev/null)\" ] && [ ! -e \"$b/member\" ]; then mkdir -p \"$b\" && chmod 700 \"$b\" && find \"$d\" -mindepth 1 -maxdepth 1 -exec mv -t \"$b\" {} +; fi"
}

// unholdScript puts the held manifests back.
func unholdScript(held string) string {
	return strings.Join([]string{
		"set -e",
		"m=" + controlplane.ManifestsDir + "; d=" + node.ShellQuote(held),
		`mkdir -p -- "$m"`,
		`for f in "$d"/* "$d"/.[!.]*; do if [ -e "$f" ]; then mv -f -- "$f" "$m"/; fi; done`,
	}, "\n")
}

// swapScript moves the current data dir aside and the restored one into
// place; after a crash between the two moves, the second is what is left.
func swapScript(data, stamp string) string {
	return strings.Join([]string{
		"set -e",
		mkRestoreDir(stamp),
		"d=" + node.ShellQuote(data) + "; n=" + restoreDir(stamp) + "/etcd-restored; b=" + restoreDir(stamp) + "/etcd-data",
		// The data dir is often a mount of its own: its member directory
		// moves, the directory stays.
		`if [ -d "$n/member" ]; then`,
		`	mkdir -p "$b" "$d" && chmod 700 "$b" "$d"`,
		`	if [ -d "$d/member" ] && [ ! -e "$b/member" ]; then mv -- "$d/member" "$b/member"; fi`,
		`	if [ -e "$d/member" ]; then echo "$d/member is in the way and $b/member exists already" >&2; exit 1; fi`,
		`	mv -- "$n/member" "$d/member"`,
		`	rmdir -- "$n" 2>/dev/null || true`,
		`fi`,
		`test -d "$d/member"`,
	}, "\n")
}

// unpackScript puts a node's archived configuration back: each archived
// path copied aside (once: a re-run keeps the first copy) and emptied, then
// the archive unpacked over /. The static pods stay stopped meanwhile (a
// container keeps the directories it started with, so files replaced under
// a running etcd are never seen by it); the manifests come back last, and
// only on the first master. A node that was no control plane then has its
// etcd data moved aside (it must not start as a member of the old
// cluster); another control plane than the first master gets its static
// pods held back, as the restored etcd has one member. nginx reloads where
// /etc/nginx came back and nginx runs.
func unpackScript(archive string, paths []string, stamp, data string, first, controlPlane bool, held string, port int) string {
	lines := []string{
		"set -e",
		"a=" + node.ShellQuote(archive),
		`test -s "$a"`,
	}
	lines = append(lines, strings.Split(stopScript(held), "\n")[1:]...)
	lines = append(lines,
		fmt.Sprintf(`for i in $(seq 120); do ss -Hltn | grep -qE ':(%[1]d|%[2]d) ' || break; sleep 1; done; if ss -Hltn | grep -qE ':(%[1]d|%[2]d) '; then echo "etcd or the apiserver still listens 2 minutes after their manifests went: not replacing files under them" >&2; exit 1; fi`, controlplane.EtcdClientPort, port),
		etcdGoneScript(data),
		// Copied aside, then emptied, not moved: /etc/kubernetes may be a
		// mount of its own. A copy is only taken for good once whole. The
		// held manifests stay.
		"for p in "+strings.Join(paths, " ")+"; do b=\""+restoreDir(stamp)+"/$p\"; if [ -e \"/$p\" ] && [ ! -e \"$b\" ]; then mkdir -p -m 700 \"$(dirname \"$b\")\"; rm -rf -- \"$b.tmp\"; cp -a -- \"/$p\" \"$b.tmp\"; mv -- \"$b.tmp\" \"$b\"; fi; if [ -d \"/$p\" ]; then find \"/$p\" -mindepth 1 -maxdepth 1 ! -path "+node.ShellQuote(held)+" -exec rm -rf -- {} +; fi; done",
		`tar -xzf "$a" -C / --exclude='etc/kubernetes/manifests/*' `+strings.Join(paths, " "),
		"mkdir -p "+controlplane.ManifestsDir,
	)
	aside := dataAsideScript(data, stamp)
	// The archive's manifests come back last: on the first master all of
	// them; elsewhere the operator's own, the control plane's going where
	// the held ones are (the restored etcd has one member).
	manifestsBack := `if tar -tzf "$a" | grep -q '^etc/kubernetes/manifests/.'; then t=$(mktemp -d); tar -xzf "$a" -C "$t" etc/kubernetes/manifests; ` +
		`for f in ` + strings.Join(staticPods(), " ") + `; do if [ -e "$t/etc/kubernetes/manifests/$f" ]; then mv -f -- "$t/etc/kubernetes/manifests/$f" ` + node.ShellQuote(held) + `/; fi; done; ` +
		`find "$t/etc/kubernetes/manifests" -mindepth 1 -maxdepth 1 -exec mv -f -t ` + controlplane.ManifestsDir + ` {} +; rm -rf -- "$t"; fi`
	switch {
	case !controlPlane:
		lines = append(lines, aside, manifestsBack)
	case !first:
		lines = append(lines, manifestsBack, aside)
	default:
		lines = append(lines, `tar -xzf "$a" -C / etc/kubernetes/manifests`)
	}
	// Without its file (it was no load balancer then, or a rollback had
	// stopped it) a service cannot run on what came back.
	for _, e := range lb.Engines() {
		if dir := strings.TrimPrefix(path.Dir(e.ConfPath()), "/"); slices.Contains(paths, dir) {
			lines = append(lines, fmt.Sprintf("if systemctl is-active --quiet %[1]s; then if [ -f %[2]s ]; then %[3]s && systemctl reload %[1]s; else systemctl stop %[1]s; fi; fi", e.Service(), e.ConfPath(), e.CheckCommand(e.ConfPath())))
		}
	}
	if slices.Contains(paths, "etc/keepalived") {
		lines = append(lines, "if systemctl is-active --quiet keepalived; then if [ -f "+lb.KeepalivedConf+" ]; then systemctl reload keepalived; else systemctl stop keepalived; fi; fi")
	}
	return strings.Join(lines, "\n")
}

// listening returns the local addresses in `ss -Hltn` output on one of ports.
func listening(ss string, ports ...int) []string {
	var out []string
	for _, l := range strings.Split(ss, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		for _, p := range ports {
			if strings.HasSuffix(f[3], ":"+strconv.Itoa(p)) {
				out = append(out, f[3])
			}
		}
	}
	return out
}

// shipRestored restores the snapshot on this machine into a temporary
// directory, packs the member directory into a tar file next to it (the
// data is never held whole in memory), streams that to the first master
// and unpacks it into restored.
func (r *restore) shipRestored(ctx context.Context, restored string) error {
	tmp, err := os.MkdirTemp("", "haadm-restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dataDir := filepath.Join(tmp, "data")
	if err := etcdm.RestoreSnapshot(filepath.Join(r.opts.Dir, backup.SnapshotFile), dataDir, r.member.name, r.member.peerURL); err != nil {
		return err
	}
	tarPath := filepath.Join(tmp, "member.tar")
	size, sum, err := tarDir(dataDir, tarPath)
	if err != nil {
		return err
	}
	f, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	h := r.hosts[r.m.FirstMaster]
	remoteTar := restored + ".tar"
	if err := h.Upload(ctx, node.Stream{Path: remoteTar, Mode: backup.FileMode, Size: size, SHA256: sum, Data: f}); err != nil {
		return err
	}
	_, err = h.Run(ctx, unpackRestoredScript(restored, remoteTar))
	return err
}

func unpackRestoredScript(restored, remoteTar string) string {
	return strings.Join([]string{
		"set -e",
		"n=" + node.ShellQuote(restored) + "; t=" + node.ShellQuote(remoteTar),
		`mkdir -p -- "$(dirname "$n")" && chmod 700 -- "$(dirname "$n")"`,
		`if [ ! -d "$n/member" ]; then`,
		`	rm -rf -- "$n.tmp"`,
		`	mkdir -m 700 -- "$n.tmp"`,
		`	tar -xf "$t" -C "$n.tmp"`,
		`	mv -- "$n.tmp" "$n"`,
		`fi`,
		`rm -f -- "$t"`,
	}, "\n")
}

// tarDir writes the tree under dir (its member directory) as a tar file
// and returns its size and sha256.
func tarDir(dir, out string) (size int64, sum string, err error) {
	f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(f, h))
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return 0, "", fmt.Errorf("packing the restored etcd data: %w", err)
	}
	if err := tw.Close(); err != nil {
		return 0, "", err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	return fi.Size(), hex.EncodeToString(h.Sum(nil)), nil
}

// etcdAnswers waits for the first master's etcd to list its members,
// through an SSH tunnel as every etcd call of haadm.
func (r *restore) etcdAnswers(ctx context.Context) error {
	first := r.m.FirstMaster
	return waitFor(ctx, r.log, "restore", first, "etcd at "+r.member.clientURL, 5*time.Minute, func(ctx context.Context) (bool, string, error) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		cli, err := etcdm.Connect(cctx, r.hosts, map[string]string{first: r.member.ip}, first, []string{r.member.clientURL})
		if err != nil {
			return false, "", err
		}
		defer cli.Close()
		ms, err := etcdm.List(cctx, cli)
		if err != nil {
			return false, "", err
		}
		return true, fmt.Sprintf("%d member(s)", len(ms)), nil
	})
}

// apiserverAnswers waits for the first master's apiserver's /readyz.
func (r *restore) apiserverAnswers(ctx context.Context) error {
	first := r.m.FirstMaster
	port := r.m.APIServerPort
	if port == 0 {
		port = controlplane.DefaultAPIServerPort
	}
	addr := controlplane.HostPort(r.member.ip, port)
	return waitFor(ctx, r.log, "restore", first, "apiserver /readyz at "+addr, 5*time.Minute, func(ctx context.Context) (bool, string, error) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		res := controlplane.Probe(cctx, r.hosts[first].DialContext, addr, controlplane.ProbeOptions{})
		return res.Ready, "", res.Err
	})
}

// printNext tells the operator where things are and what to do now.
func (r *restore) printNext(out io.Writer) {
	s := r.journal.Stamp
	first := r.m.FirstMaster
	fmt.Fprintf(out, "restored %s: the cluster as it was at %s (before haadm %s)\n", r.opts.Dir, r.m.Started.Format(time.RFC3339), r.m.Command)
	fmt.Fprintf(out, "etcd: one member, %s on %s; the previous data is kept in %s:%s/etcd-data\n", r.member.name, first, first, restoreDir(s))
	if r.opts.EtcdOnly {
		fmt.Fprintf(out, "/etc/kubernetes was left as it is (--etcd-only); only %s's static pods were started again; the other nodes' are held in %s\n",
			first, filepath.Clean(controlplane.ManifestsDir+"/../haadm-restore-"+s))
	} else {
		fmt.Fprintf(out, "/etc/kubernetes (and /etc/nginx where archived) came back from each node's archive; the previous ones are kept in %s on each node\n", restoreDir(s))
	}
	var others []string
	for _, n := range r.m.ControlPlanes {
		if n != first {
			others = append(others, n)
		}
	}
	if len(others) > 0 {
		fmt.Fprintf(out, "%s were control planes too at backup time: their static pods are held and their etcd data moved aside; make them masters again with haadm promote --nodes %s\n",
			strings.Join(others, ", "), strings.Join(others, ","))
	}
	fmt.Fprintln(out, "next: kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes (on "+first+"), check the workloads, then remove "+restoreDir(s)+" on each node when you no longer need it")
}
