package node

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// filesHost is a Host under test with, for SSH, a count of the sessions its
// server has started; nil where there are no sessions.
type filesHost struct {
	h        Host
	sessions func(want int) int
}

// otherOwner is an owner other than the one files get by default: nobody
// when the tests run as root (they do in CI), else the current user, so that
// LocalHost's "no chown needed" path runs too.
func otherOwner() (uid, gid int) {
	if os.Geteuid() == 0 {
		return 65534, 65534
	}
	return os.Getuid(), os.Getgid()
}

func setFile(t *testing.T, p string, data []byte, mode fs.FileMode, uid, gid int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(p, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// statOwner is what the node's filesystem says about p, checked directly
// since the test sshd runs on this machine.
func statOwner(t *testing.T, p string) (mode fs.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fi.Mode(), int(st.Uid), int(st.Gid)
}

// pattern is n bytes that make a misplaced or dropped byte visible.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>8)
	}
	return b
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// testReadWriteFiles is the behaviour SSHHost and LocalHost share.
func testReadWriteFiles(t *testing.T, fh filesHost) {
	h := fh.h
	ctx := context.Background()
	uid, gid := otherOwner()
	me, myGroup := os.Getuid(), os.Getgid()
	// calls runs fn and checks it opened exactly want sessions.
	calls := func(t *testing.T, want int, fn func()) {
		t.Helper()
		if fh.sessions == nil {
			fn()
			return
		}
		before := fh.sessions(0)
		fn()
		if got := fh.sessions(before+want) - before; got != want {
			t.Errorf("%d SSH sessions, want %d", got, want)
		}
	}

	t.Run("read", func(t *testing.T) {
		dir := t.TempDir()
		big := pattern(200<<10+123, 1)
		odd := filepath.Join(dir, "odd name's $x\nline")
		want := map[string]File{
			filepath.Join(dir, "present.conf"): {Data: []byte("a: 1\nb: 2\n"), Mode: 0o640, UID: uid, GID: gid},
			filepath.Join(dir, "empty"):        {Data: []byte{}, Mode: 0o600, UID: me, GID: myGroup},
			filepath.Join(dir, "binary"):       {Data: allBytes(), Mode: 0o644, UID: me, GID: myGroup},
			filepath.Join(dir, "sub", "big"):   {Data: big, Mode: 0o604, UID: uid, GID: myGroup},
			odd:                                {Data: []byte("no newline"), Mode: 0o400, UID: me, GID: gid},
		}
		for p, f := range want {
			setFile(t, p, f.Data, f.Mode, f.UID, f.GID)
		}
		paths := []string{
			filepath.Join(dir, "present.conf"),
			filepath.Join(dir, "missing"),
			filepath.Join(dir, "empty"),
			filepath.Join(dir, "binary"),
			filepath.Join(dir, "sub", "big"),
			filepath.Join(dir, "present.conf", "below-a-file"), // test -e: missing
			odd,
			filepath.Join(dir, "binary"), // twice
		}
		var got map[string]File
		var err error
		calls(t, 1, func() { got, err = h.ReadFiles(ctx, paths) })
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("got %d files, want %d: %v", len(got), len(want), keys(got))
		}
		for p, w := range want {
			g, ok := got[p]
			switch {
			case !ok:
				t.Errorf("%q missing from the result", p)
			case !bytes.Equal(g.Data, w.Data):
				t.Errorf("%q: %d bytes differ from the %d written", p, len(g.Data), len(w.Data))
			case g.Path != p || g.Mode != w.Mode || g.UID != w.UID || g.GID != w.GID || g.Dir:
				t.Errorf("%q: got path %q mode %v owner %s dir %v, want mode %v owner %s", p, g.Path, g.Mode, g.Owner(), g.Dir, w.Mode, w.Owner())
			}
		}
		// Appending to one file's data must not reach into another's.
		b := got[filepath.Join(dir, "binary")]
		_ = append(b.Data, "XXXX"...)
		if p := got[filepath.Join(dir, "sub", "big")]; !bytes.Equal(p.Data, big) {
			t.Error("append to one result changed another")
		}

		calls(t, 0, func() {
			if m, err := h.ReadFiles(ctx, nil); err != nil || m == nil || len(m) != 0 {
				t.Errorf("empty read: %v, %v", m, err)
			}
		})
	})

	t.Run("read a directory", func(t *testing.T) {
		dir := t.TempDir()
		secret := filepath.Join(dir, "ca.key")
		setFile(t, secret, []byte(testKeyPEM), 0o600, 0, 0)
		sub := filepath.Join(dir, "a dir")
		os.Mkdir(sub, 0o755)
		_, err := h.ReadFiles(ctx, []string{secret, sub, filepath.Join(dir, "never read")})
		if err == nil {
			t.Fatal("reading a directory succeeded")
		}
		t.Log(err)
		if msg := err.Error(); !strings.Contains(msg, h.Name()) || !strings.Contains(msg, sub) || !strings.Contains(msg, "directory") {
			t.Errorf("error does not name node, path and reason: %v", err)
		}
		// The content read before the failure stays out of the error.
		var ce *CmdError
		if strings.Contains(err.Error(), "SECRET") || errors.As(err, &ce) && len(ce.Stdout) > 0 {
			t.Errorf("error carries file content: %v", err)
		}
	})

	t.Run("write", func(t *testing.T) {
		dir := t.TempDir()
		existing := filepath.Join(dir, "existing.yaml")
		setFile(t, existing, []byte("old content, longer than the new\n"), 0o644, 0, 0)
		before, _ := os.Stat(existing)
		newDir := filepath.Join(dir, "new dir", "pki")
		batch := []File{
			{Path: existing, Data: []byte("new\n"), Mode: 0o640, UID: uid, GID: gid},
			{Path: newDir, Mode: 0o750, UID: uid, GID: gid, Dir: true},
			{Path: filepath.Join(newDir, "ca.key"), Data: []byte(testKeyPEM), Mode: 0o600, UID: me, GID: myGroup},
			{Path: filepath.Join(dir, "deep", "er", "big.bin"), Data: pattern(300<<10+1, 2), Mode: 0o644, UID: me, GID: gid},
			{Path: filepath.Join(dir, "binary"), Data: allBytes(), Mode: 0o604, UID: uid, GID: myGroup},
			{Path: filepath.Join(dir, "empty"), Mode: 0o600, UID: me, GID: myGroup},
			{Path: filepath.Join(dir, "odd name's $x"), Data: []byte("x"), Mode: 0o644, UID: me, GID: myGroup},
		}
		calls(t, 1, func() {
			if err := h.WriteFiles(ctx, batch); err != nil {
				t.Fatal(err)
			}
		})
		for _, f := range batch {
			mode, u, g := statOwner(t, f.Path)
			wantMode := f.Mode
			if f.Dir {
				wantMode |= fs.ModeDir
			} else if got, _ := os.ReadFile(f.Path); !bytes.Equal(got, f.Data) {
				t.Errorf("%s: %d bytes, want the %d written", f.Path, len(got), len(f.Data))
			}
			if mode != wantMode || u != f.UID || g != f.GID {
				t.Errorf("%s: mode %v owner %d:%d, want %v %s", f.Path, mode, u, g, wantMode, f.Owner())
			}
		}
		if after, _ := os.Stat(existing); os.SameFile(before, after) {
			t.Error("overwrite reused the inode: not written through a rename")
		}
		// Parents made on the way keep the usual permissions, not the
		// staged files' umask.
		if m, _, _ := statOwner(t, filepath.Join(dir, "deep")); m.Perm()&0o055 == 0 {
			t.Errorf("parent directory mode %v", m)
		}
		assertNoTempFiles(t, dir)

		// What was written reads back the same.
		var paths []string
		for _, f := range batch {
			if !f.Dir {
				paths = append(paths, f.Path)
			}
		}
		got, err := h.ReadFiles(ctx, paths)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range batch {
			if f.Dir {
				continue
			}
			g := got[f.Path]
			if !bytes.Equal(g.Data, f.Data) || g.Mode != f.Mode || g.UID != f.UID || g.GID != f.GID {
				t.Errorf("read back %s: %d bytes mode %v owner %s", f.Path, len(g.Data), g.Mode, g.Owner())
			}
		}

		// An existing directory entry is adjusted, not an error.
		calls(t, 1, func() {
			if err := h.WriteFiles(ctx, []File{{Path: newDir, Mode: 0o700, UID: me, GID: myGroup, Dir: true}}); err != nil {
				t.Fatal(err)
			}
		})
		if m, u, g := statOwner(t, newDir); m != fs.ModeDir|0o700 || u != me || g != myGroup {
			t.Errorf("existing directory: %v %d:%d", m, u, g)
		}
		calls(t, 0, func() {
			if err := h.WriteFiles(ctx, nil); err != nil {
				t.Errorf("empty batch: %v", err)
			}
		})
	})

	// A batch with an entry that cannot be staged changes nothing.
	t.Run("write is all or nothing", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			bad    func(dir string) File
			reason string
		}{
			{"parent is a file", func(dir string) File {
				return File{Path: filepath.Join(dir, "blocker", "sub", "x"), Data: []byte("x"), Mode: 0o644}
			}, "blocker"},
			{"target is a directory", func(dir string) File {
				os.Mkdir(filepath.Join(dir, "a dir"), 0o755)
				return File{Path: filepath.Join(dir, "a dir"), Data: []byte("x"), Mode: 0o644}
			}, "a dir"},
			{"directory entry is a file", func(dir string) File {
				return File{Path: filepath.Join(dir, "blocker"), Mode: 0o755, Dir: true}
			}, "blocker"},
			{"bad owner", func(dir string) File {
				return File{Path: filepath.Join(dir, "owned"), Data: []byte("x"), Mode: 0o644, UID: -1}
			}, "owned"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				dir := t.TempDir()
				keep1, keep2 := filepath.Join(dir, "keep1"), filepath.Join(dir, "sub", "keep2")
				setFile(t, keep1, []byte("one\n"), 0o644, me, myGroup)
				setFile(t, keep2, pattern(1000, 3), 0o600, me, myGroup)
				setFile(t, filepath.Join(dir, "blocker"), []byte("a regular file"), 0o644, me, myGroup)
				batch := []File{
					{Path: keep1, Data: []byte("replaced\n"), Mode: 0o600, UID: uid, GID: gid},
					{Path: filepath.Join(dir, "new"), Data: []byte("new\n"), Mode: 0o644},
					tc.bad(dir),
					// Large, after the failing entry: the script stops
					// without reading it from stdin.
					{Path: keep2, Data: pattern(250<<10, 4), Mode: 0o644, UID: uid, GID: gid},
				}
				var err error
				want := 1
				if tc.name == "bad owner" {
					want = 0 // refused before any session
				}
				calls(t, want, func() { err = h.WriteFiles(ctx, batch) })
				if err == nil {
					t.Fatal("batch with a bad entry succeeded")
				}
				t.Log(err)
				if !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), h.Name()) {
					t.Errorf("error does not explain: %v", err)
				}
				for p, w := range map[string][]byte{keep1: []byte("one\n"), keep2: pattern(1000, 3)} {
					if got, _ := os.ReadFile(p); !bytes.Equal(got, w) {
						t.Errorf("%s changed by a failed batch", p)
					}
				}
				if m, u, g := statOwner(t, keep1); m != 0o644 || u != me || g != myGroup {
					t.Errorf("keep1 mode or owner changed: %v %d:%d", m, u, g)
				}
				if _, err := os.Stat(filepath.Join(dir, "new")); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("failed batch created a file: %v", err)
				}
				assertNoTempFiles(t, dir)
			})
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		dir := t.TempDir()
		done, cancel := context.WithCancel(ctx)
		cancel()
		p := filepath.Join(dir, "f")
		calls(t, 0, func() {
			if err := h.WriteFiles(done, []File{{Path: p, Data: []byte("x"), Mode: 0o644}}); !errors.Is(err, context.Canceled) {
				t.Errorf("WriteFiles with a cancelled context: %v", err)
			}
			if _, err := h.ReadFiles(done, []string{p}); !errors.Is(err, context.Canceled) {
				t.Errorf("ReadFiles with a cancelled context: %v", err)
			}
		})
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cancelled write wrote: %v", err)
		}
	})
}

func keys(m map[string]File) []string {
	var k []string
	for p := range m {
		k = append(k, p)
	}
	return k
}

func TestSSHReadWriteFiles(t *testing.T) {
	t.Parallel()
	// No isolateEnv (t.Setenv rules out t.Parallel): IdentitiesOnly keeps
	// a developer's agent keys out of the authentication.
	s := startSSHD(t)
	cfg, _ := s.clientConfig(t, "  IdentitiesOnly yes", s.knownHostsLine("ed25519"))
	h := dialTest(t, s, SSHOptions{ConfigFile: cfg})
	// Sanity check of the counter the test relies on.
	before := s.waitSessions(0)
	h.Output(context.Background(), "true")
	if got := s.waitSessions(before+1) - before; got != 1 {
		t.Fatalf("session counter: one command counted as %d sessions", got)
	}
	testReadWriteFiles(t, filesHost{h: h, sessions: s.waitSessions})
}

func TestLocalReadWriteFiles(t *testing.T) {
	t.Parallel()
	testReadWriteFiles(t, filesHost{h: NewLocalHost("here")})
}

// The parser must refuse anything but the exact stream the script prints.
func TestParseReadFiles(t *testing.T) {
	t.Parallel()
	paths := []string{"/a", "/b"}
	good := "haadm-file 0 present 640 0 65534 3\nx\ny\nhaadm-end 0\nhaadm-file 1 missing\nhaadm-done 2\n"
	files, done, err := parseReadFiles([]byte(good), paths)
	if err != nil || done != 2 || len(files) != 1 || string(files["/a"].Data) != "x\ny" || files["/a"].Mode != 0o640 || files["/a"].GID != 65534 {
		t.Fatalf("good stream: %v %d %v", files, done, err)
	}
	for _, tc := range []struct {
		name, out string
		done      int
	}{
		{"empty", "", 0},
		{"cut in the header", "haadm-file 0 pres", 0},
		{"cut in the content", "haadm-file 0 present 640 0 0 3\nx\n", 0},
		{"content longer than announced", "haadm-file 0 present 640 0 0 2\nx\ny\nhaadm-end 0\nhaadm-file 1 missing\nhaadm-done 2\n", 0},
		{"content shorter than announced", "haadm-file 0 present 640 0 0 4\nx\ny\nhaadm-end 0\nhaadm-file 1 missing\nhaadm-done 2\n", 0},
		{"wrong index", "haadm-file 1 missing\nhaadm-file 0 missing\nhaadm-done 2\n", 0},
		{"bad mode", "haadm-file 0 present 999 0 0 0\n\nhaadm-end 0\nhaadm-file 1 missing\nhaadm-done 2\n", 0},
		{"negative size", "haadm-file 0 present 640 0 0 -1\n\nhaadm-end 0\nhaadm-file 1 missing\nhaadm-done 2\n", 0},
		{"extra field", "haadm-file 0 missing x\nhaadm-file 1 missing\nhaadm-done 2\n", 0},
		{"noise before", "motd\nhaadm-file 0 missing\nhaadm-file 1 missing\nhaadm-done 2\n", 0},
		{"second entry cut", "haadm-file 0 missing\nhaadm-fi", 1},
		{"no done line", "haadm-file 0 missing\nhaadm-file 1 missing\n", 2},
		{"wrong count", "haadm-file 0 missing\nhaadm-file 1 missing\nhaadm-done 3\n", 2},
		{"trailing bytes", "haadm-file 0 missing\nhaadm-file 1 missing\nhaadm-done 2\nx", 2},
	} {
		files, done, err := parseReadFiles([]byte(tc.out), paths)
		if err == nil || files != nil || done != tc.done {
			t.Errorf("%s: %v, done %d, %v", tc.name, files, done, err)
		}
		if done < len(paths) && err != nil && !strings.Contains(err.Error(), paths[done]) {
			t.Errorf("%s: error does not name %s: %v", tc.name, paths[done], err)
		}
	}
}

// A dropped connection looks like a short stdin to the write script: it
// must fail before any rename.
func TestWriteFilesScriptShortStdin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("old a"), 0o644)
	os.WriteFile(b, []byte("old b"), 0o644)
	uid, gid := os.Getuid(), os.Getgid()
	files := []File{
		{Path: a, Data: []byte("new a"), Mode: 0o600, UID: uid, GID: gid},
		{Path: b, Data: []byte("new b, longer"), Mode: 0o600, UID: uid, GID: gid},
	}
	cmd := exec.Command("/bin/sh", "-c", writeFilesScript(files, "x"))
	cmd.Stdin = strings.NewReader("new anew b") // b gets 5 of its 13 bytes
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "short write of "+b+": received 5 of 13 bytes") {
		t.Fatalf("short stdin: %v %s", err, out)
	}
	for p, want := range map[string]string{a: "old a", b: "old b"} {
		if got, _ := os.ReadFile(p); string(got) != want {
			t.Errorf("%s replaced by a short write: %q", p, got)
		}
	}
	assertNoTempFiles(t, dir)
}

func TestFakeFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := NewFake("emei")
	f.SetFile("/etc/kubernetes/admin.conf", []byte("conf"), 0o600)
	f.SetFiles(File{Path: "/etc/kubernetes/pki/ca.crt", Data: []byte("crt"), Mode: 0o644, UID: 1, GID: 2})

	got, err := f.ReadFiles(ctx, []string{"/etc/kubernetes/admin.conf", "/missing", "/etc/kubernetes/pki/ca.crt"})
	if err != nil || len(got) != 2 {
		t.Fatalf("ReadFiles: %v, %v", got, err)
	}
	if c := got["/etc/kubernetes/pki/ca.crt"]; string(c.Data) != "crt" || c.Mode != 0o644 || c.UID != 1 || c.GID != 2 || c.Path != "/etc/kubernetes/pki/ca.crt" {
		t.Errorf("ca.crt: %+v", c)
	}
	// The result is a copy.
	got["/etc/kubernetes/admin.conf"].Data[0] = 'X'
	if b, _, _ := f.File("/etc/kubernetes/admin.conf"); string(b) != "conf" {
		t.Errorf("ReadFiles returned the fake's own bytes: %q", b)
	}

	batch := []File{
		{Path: "/etc/kubernetes/pki/etcd", Mode: 0o700, Dir: true},
		{Path: "/etc/kubernetes/pki/etcd/ca.key", Data: []byte("key"), Mode: 0o600},
		{Path: "/etc/kubernetes/admin.conf", Data: []byte("new conf"), Mode: 0o640, UID: 3, GID: 4},
	}
	if err := f.WriteFiles(ctx, batch); err != nil {
		t.Fatal(err)
	}
	batch[1].Data[0] = 'X' // the fake keeps its own copy
	if d, ok := f.Stat("/etc/kubernetes/pki/etcd"); !ok || !d.Dir || d.Mode != 0o700 {
		t.Errorf("directory entry: %+v %v", d, ok)
	}
	if k, ok := f.Stat("/etc/kubernetes/pki/etcd/ca.key"); !ok || string(k.Data) != "key" || k.Dir {
		t.Errorf("ca.key: %+v %v", k, ok)
	}
	if c, _ := f.Stat("/etc/kubernetes/admin.conf"); string(c.Data) != "new conf" || c.Mode != 0o640 || c.UID != 3 || c.GID != 4 {
		t.Errorf("admin.conf: %+v", c)
	}
	if _, err := f.ReadFiles(ctx, []string{"/etc/kubernetes/pki/etcd"}); err == nil || !strings.Contains(err.Error(), "/etc/kubernetes/pki/etcd") {
		t.Errorf("reading a directory: %v", err)
	}

	// A batch that cannot be staged stores nothing.
	err = f.WriteFiles(ctx, []File{
		{Path: "/etc/kubernetes/admin.conf", Data: []byte("lost"), Mode: 0o600},
		{Path: "/etc/kubernetes/admin.conf/x", Data: []byte("x"), Mode: 0o600},
	})
	if err == nil || !strings.Contains(err.Error(), "emei") {
		t.Errorf("batch below a file: %v", err)
	}
	if c, _ := f.Stat("/etc/kubernetes/admin.conf"); string(c.Data) != "new conf" {
		t.Errorf("failed batch changed admin.conf: %q", c.Data)
	}

	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.ReadFiles(done, []string{"/a"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ReadFiles: %v", err)
	}
	if err := f.WriteFiles(done, []File{{Path: "/a", Data: []byte("a")}}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled WriteFiles: %v", err)
	}
	if _, ok := f.Stat("/a"); ok {
		t.Error("cancelled WriteFiles stored the file")
	}

	type rec struct {
		kind CallKind
		path string
		data string
		mode fs.FileMode
		dir  bool
	}
	want := []rec{
		{CallRead, "/etc/kubernetes/admin.conf", "", 0, false},
		{CallRead, "/missing", "", 0, false},
		{CallRead, "/etc/kubernetes/pki/ca.crt", "", 0, false},
		{CallWrite, "/etc/kubernetes/pki/etcd", "", 0o700, true},
		{CallWrite, "/etc/kubernetes/pki/etcd/ca.key", "key", 0o600, false},
		{CallWrite, "/etc/kubernetes/admin.conf", "new conf", 0o640, false},
		{CallRead, "/etc/kubernetes/pki/etcd", "", 0, false},
		{CallWrite, "/etc/kubernetes/admin.conf", "lost", 0o600, false},
		{CallWrite, "/etc/kubernetes/admin.conf/x", "x", 0o600, false},
		{CallRead, "/a", "", 0, false},
		{CallWrite, "/a", "a", 0, false},
	}
	calls := f.Calls()
	if len(calls) != len(want) {
		t.Fatalf("%d calls, want %d: %+v", len(calls), len(want), calls)
	}
	for i, c := range calls {
		if got := (rec{c.Kind, c.Path, string(c.Data), c.Mode, c.Dir}); got != want[i] {
			t.Errorf("call %d: %+v, want %+v", i, got, want[i])
		}
	}
	if calls[5].UID != 3 || calls[5].GID != 4 {
		t.Errorf("write call owner: %d:%d", calls[5].UID, calls[5].GID)
	}
	if !slices.Contains(f.Files(), "/etc/kubernetes/pki/etcd") {
		t.Errorf("Files() does not list the directory: %v", f.Files())
	}
}
