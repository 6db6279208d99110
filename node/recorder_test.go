package node

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testKeyPEM = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBAD-SECRET-MATERIAL\n-----END EC PRIVATE KEY-----\n"

func TestRecorderOverLocalHost(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	conf := filepath.Join(dir, "kubeadm.yaml")
	os.WriteFile(conf, []byte("a: 1\nb: 2\nc: 3\n"), 0o644)
	r := NewRecorder(NewLocalHost("emei"))

	// Run is recorded, not executed.
	marker := filepath.Join(dir, "ran")
	if out, err := r.Run(ctx, "touch "+marker); out != "" || err != nil {
		t.Fatal(out, err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("dry run executed Run")
	}
	// Output is executed.
	if out, err := r.Output(ctx, "echo real"); out != "real\n" || err != nil {
		t.Fatal(out, err)
	}

	// Identical content and mode: nothing to do.
	if err := r.WriteFile(ctx, conf, []byte("a: 1\nb: 2\nc: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := len(r.Changes()); n != 1 {
		t.Fatalf("identical write recorded: %v", r.Changes())
	}

	if err := r.WriteFile(ctx, conf, []byte("a: 1\nb: 20\nc: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(conf); string(got) != "a: 1\nb: 2\nc: 3\n" {
		t.Fatalf("dry run wrote the file: %q", got)
	}
	// Later steps see the planned content.
	if got, err := r.ReadFile(ctx, conf); string(got) != "a: 1\nb: 20\nc: 3\n" || err != nil {
		t.Fatalf("read after planned write: %q %v", got, err)
	}
	// Writing the planned content again changes nothing more.
	r.WriteFile(ctx, conf, []byte("a: 1\nb: 20\nc: 3\n"), 0o644)

	newFile := filepath.Join(dir, "new", "file.yaml")
	if err := r.WriteFile(ctx, newFile, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(newFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("dry run created the file")
	}
	// Mode-only change.
	r.WriteFile(ctx, marker+"-none", nil, 0o600) // new empty file
	os.WriteFile(filepath.Join(dir, "m"), []byte("same"), 0o644)
	r.WriteFile(ctx, filepath.Join(dir, "m"), []byte("same"), 0o600)

	ch := r.Changes()
	if len(ch) != 5 {
		t.Fatalf("changes: %d\n%v", len(ch), ch)
	}
	if ch[0].Kind != ChangeRun || ch[0].Cmd != "touch "+marker || ch[0].Node != "emei" {
		t.Errorf("run change: %+v", ch[0])
	}
	if c := ch[1]; c.Kind != ChangeWrite || c.Path != conf || c.NewFile ||
		!strings.Contains(c.Diff, "-b: 2\n+b: 20\n") || !strings.Contains(c.Diff, "a"+conf) {
		t.Errorf("write change: %+v", c)
	}
	if c := ch[2]; !c.NewFile || c.Mode != 0o600 || !strings.Contains(c.Diff, "new file") || !strings.Contains(c.Diff, "+hello") {
		t.Errorf("new file change: %+v", c)
	}
	if c := ch[3]; !c.NewFile || !strings.Contains(c.Diff, "new empty file") {
		t.Errorf("new empty file change: %+v", c)
	}
	if c := ch[4]; !strings.Contains(c.Diff, "mode 0644 -> 0600") {
		t.Errorf("mode change: %+v", c)
	}
	t.Logf("dry run:\n%s\n%s\n%s", ch[0], ch[1], ch[2])
}

func TestRecorderRedactsKeys(t *testing.T) {
	ctx := context.Background()
	f := NewFake("emei")
	f.SetFile("/etc/kubernetes/pki/sa.key", []byte(testKeyPEM), 0o600)
	f.SetFile("/etc/kubernetes/admin.conf", []byte("users:\n- user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZLU9MRA==\n"), 0o600)
	r := NewRecorder(f)

	newKey := strings.Replace(testKeyPEM, "BAD", "NEW", 1)
	r.WriteFile(ctx, "/etc/kubernetes/pki/sa.key", []byte(newKey), 0o600)
	r.WriteFile(ctx, "/etc/kubernetes/pki/etcd/new.key", []byte(newKey), 0o600)
	r.WriteFile(ctx, "/somewhere/else.pem", []byte("cert\n"+testKeyPEM), 0o600)
	r.WriteFile(ctx, "/etc/kubernetes/admin.conf", []byte("users:\n- user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZLU5FVw==\n"), 0o600)

	ch := r.Changes()
	if len(ch) != 4 {
		t.Fatalf("changes: %v", ch)
	}
	for _, c := range ch[:3] {
		if !strings.Contains(c.Diff, "(private key content changed, ") {
			t.Errorf("%s: %q", c.Path, c.Diff)
		}
	}
	all := ""
	for _, c := range ch {
		all += c.String()
	}
	for _, secret := range []string{"SECRET", "S0VZLU9MRA", "S0VZLU5FVw"} {
		if strings.Contains(all, secret) {
			t.Errorf("dry run output shows key material %q:\n%s", secret, all)
		}
	}
	if !strings.Contains(ch[3].Diff, "-    client-key-data: (redacted") || !strings.Contains(ch[3].Diff, "+    client-key-data: (redacted") {
		t.Errorf("kubeconfig diff: %s", ch[3].Diff)
	}
	// The planned key is still readable by later steps.
	if got, _ := r.ReadFile(ctx, "/etc/kubernetes/pki/etcd/new.key"); string(got) != newKey {
		t.Error("planned key not readable")
	}
	// Nothing reached the fake.
	for _, c := range f.Calls() {
		if c.Kind == CallWrite || c.Kind == CallRun {
			t.Errorf("recorder passed %v through", c)
		}
	}
}

func TestRecorderReadErrors(t *testing.T) {
	f := NewFake("emei")
	r := NewRecorder(f)
	if _, err := r.ReadFile(context.Background(), "/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
	// The fake has no FileMode knowledge problem: identical content and
	// mode record nothing.
	f.SetFile("/x", []byte("x"), 0o644)
	r.WriteFile(context.Background(), "/x", []byte("x"), 0o644)
	if len(r.Changes()) != 0 {
		t.Fatal(r.Changes())
	}
	if !bytes.Equal(mustRead(t, r, "/x"), []byte("x")) {
		t.Fatal("read through")
	}
}

func mustRead(t *testing.T, h Host, p string) []byte {
	t.Helper()
	b, err := h.ReadFile(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFileDiff(t *testing.T) {
	got := fileDiff("/x", []byte("a\nb"), []byte("a\nc\n"), true)
	want := "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := fileDiff("/y", nil, []byte{}, false); !strings.Contains(got, "new empty file") {
		t.Errorf("empty new file: %q", got)
	}
}
