package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestVersionAndHelp(t *testing.T) {
	if code, out, _ := run(t, "--version"); code != 0 || !strings.Contains(out, "haadm version") {
		t.Errorf("--version: %d %q", code, out)
	}
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "haadm ") {
		t.Errorf("version: %d %q", code, out)
	}
	for _, want := range []string{"commit:", "built:", "go:       go1.", "platform: " + runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(out, want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t, "help")
	if code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	for _, want := range []string{"promote", "phase", "status", "--ssh-config", "--kubeconfig", "--break-lock"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

// Every phase of promote is also a `haadm phase` subcommand, with only the
// flags it uses; preflight and backup are steps of every run, not phases.
func TestPhaseSubcommands(t *testing.T) {
	_, out, _ := run(t, "phase", "--help")
	for _, p := range []string{"certs", "etcd", "control-plane", "mark", "lb", "kubelet", "cluster-config"} {
		if !strings.Contains(out, "  "+p+" ") {
			t.Errorf("phase help lacks %s:\n%s", p, out)
		}
	}
	for _, p := range []string{"preflight", "backup"} {
		if strings.Contains(out, "  "+p+" ") {
			t.Errorf("phase help lists %s, which is a step of every run:\n%s", p, out)
		}
	}
	for _, tc := range []struct {
		phase      string
		has, lacks []string
	}{
		{"etcd", []string{"--nodes", "--remove-stale-learners", "--dry-run", "--skip-backup", "--keep-backups"}, []string{"--lb-node", "--endpoint", "--cert-sans"}},
		{"mark", []string{"--nodes", "--skip-backup"}, []string{"--lb-node", "--remove-stale-learners"}},
		{"certs", []string{"--lb-node", "--endpoint", "--cert-sans", "--skip-backup", "--backup-dir"}, []string{"--remove-stale-learners", "--skip-phases"}},
	} {
		_, out, _ := run(t, "phase", tc.phase, "--help")
		for _, f := range tc.has {
			if !strings.Contains(out, f) {
				t.Errorf("phase %s lacks %s:\n%s", tc.phase, f, out)
			}
		}
		for _, f := range tc.lacks {
			if strings.Contains(out, f) {
				t.Errorf("phase %s takes %s, which it does not use:\n%s", tc.phase, f, out)
			}
		}
	}
}

// Bad input fails before anything is contacted, with a message that says
// what to do.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	missing := filepath.Join(dir, "nope.kubeconfig")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"promote"}, "no nodes to promote: give --nodes"},
		{[]string{"promote", "--nodes", "emei", "--no-such-flag"}, "unknown flag"},
		{[]string{"status", "-o", "xml"}, "use table, json or yaml"},
		{[]string{"promote", "--nodes", "emei", "--lb-node", "emei", "--skip-phases", "certz"}, "--skip-phases certz: no such phase"},
		{[]string{"promote", "--nodes", "emei", "--lb-mode", "vrrp"}, `--lb-mode "vrrp": use external, node-local, vip or none`},
		{[]string{"--kubeconfig", missing, "promote", "--nodes", "emei", "--lb-node", "emei"}, "kubeconfig"},
		{[]string{"phase", "etcdd"}, "unknown command"},
	} {
		code, _, errOut := run(t, tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errOut, tc.want)
		}
	}
	// A failed run still leaves its log behind, named in the error.
	state := filepath.Join(dir, "state")
	t.Setenv("XDG_STATE_HOME", state)
	_, _, errOut := run(t, "--kubeconfig", missing, "promote", "--nodes", "emei", "--lb-node", "emei")
	if !strings.Contains(errOut, "details: "+filepath.Join(state, "haadm", "promote-")) {
		t.Errorf("error does not name the log file: %q", errOut)
	}
	if logs, _ := filepath.Glob(filepath.Join(state, "haadm", "promote-*.log")); len(logs) == 0 {
		t.Error("no log file written")
	} else if b, _ := os.ReadFile(logs[0]); !strings.Contains(string(b), "ERROR") {
		t.Errorf("log lacks the error: %q", b)
	}
}

// status without any reachable API says so with exit code 3.
func TestStatusAPIUnreachable(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters:
- cluster: {server: "https://127.0.0.1:1"}
  name: c
contexts:
- context: {cluster: c, user: u}
  name: x
current-context: x
users:
- name: u
  user: {token: t}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "--kubeconfig", kc, "--ssh-config", filepath.Join(dir, "ssh_config"), "status", "--probe-timeout", "500ms")
	if code != 3 {
		t.Errorf("exit %d, want 3\n%s", code, out)
	}
}

// restore takes one backup directory and refuses, before any SSH, one
// that is not a backup.
func TestRestoreCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	_, out, _ := run(t, "restore", "--help")
	for _, f := range []string{"restore BACKUP", "--etcd-only", "--dry-run", "--ssh-config"} {
		if !strings.Contains(out, f) {
			t.Errorf("restore help lacks %s:\n%s", f, out)
		}
	}
	if code, _, errOut := run(t, "restore"); code == 0 || !strings.Contains(errOut, "accepts 1 arg") {
		t.Errorf("restore without a backup: %d %q", code, errOut)
	}
	code, _, errOut := run(t, "restore", "--log-file", "restore.log", "nope")
	if code == 0 || !strings.Contains(errOut, "nope is not a backup haadm can restore") || !strings.Contains(errOut, "nothing was changed") {
		t.Errorf("restore of a missing dir: %d %q", code, errOut)
	}
}
