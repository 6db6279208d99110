package cmd

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLogDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_STATE_HOME", "")
	if d, err := logDir(); err != nil || d != filepath.Join(home, ".local", "state", "haadm") {
		t.Errorf("without XDG_STATE_HOME: %q %v", d, err)
	}
	// The XDG specification says to ignore a relative path.
	t.Setenv("XDG_STATE_HOME", "relative/state")
	if d, _ := logDir(); d != filepath.Join(home, ".local", "state", "haadm") {
		t.Errorf("relative XDG_STATE_HOME: %q", d)
	}
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	if d, _ := logDir(); d != filepath.Join(state, "haadm") {
		t.Errorf("XDG_STATE_HOME=%s: %q", state, d)
	}
}

func TestOpenLogModes(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	dir := filepath.Join(state, "haadm")
	// A directory left more open (by hand, or by an older haadm) is closed.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, path, err := openLog(&globalFlags{}, "phase-certs")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if filepath.Dir(path) != dir || !strings.HasPrefix(filepath.Base(path), "phase-certs-") || !strings.HasSuffix(path, ".log") {
		t.Errorf("log path %s", path)
	}
	if _, err := time.Parse(logTimeLayout, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "phase-certs-"), ".log")); err != nil {
		t.Errorf("log name %s: %v", path, err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (%v)", p, st.Mode().Perm(), want, err)
		}
	}
	// --log-file wins, and is not pruned or moved.
	own := filepath.Join(t.TempDir(), "mine.log")
	f, path, err = openLog(&globalFlags{logFile: own}, "promote")
	if err != nil || path != own {
		t.Fatalf("--log-file: %q %v", path, err)
	}
	f.Close()
}

func TestPruneLogs(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	dir := filepath.Join(state, "haadm")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var names []string
	for i := range 25 {
		cmd := []string{"promote", "phase-control-plane", "status"}[i%3]
		names = append(names, fmt.Sprintf("%s-%s.log", cmd, old.Add(time.Duration(i)*time.Hour).Format(logTimeLayout)))
	}
	foreign := []string{"notes.txt", "promote.log", "promote-20250101-000000.log.gz", "Promote-20240101-000000.log"}
	for _, n := range append(slices.Clone(names), foreign...) {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, path, err := openLog(&globalFlags{}, "promote")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The new log and the 19 newest before it stay; other files are not
	// haadm's and stay too.
	want := append(append([]string{filepath.Base(path)}, names[6:]...), foreign...)
	slices.Sort(want)
	entries, _ := os.ReadDir(dir)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("after pruning:\n got %q\nwant %q", got, want)
	}
}
