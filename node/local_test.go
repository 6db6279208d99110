package node

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLocalHost(t *testing.T) {
	ctx := context.Background()
	h := NewLocalHost("here")
	if h.Name() != "here" || NewLocalHost("").Name() == "" {
		t.Fatal("Name")
	}
	out, err := h.Output(ctx, "echo a; echo b >&2")
	if err != nil || out != "a\n" {
		t.Fatalf("Output = %q, %v", out, err)
	}
	_, err = h.Run(ctx, "echo out; echo bad >&2; exit 7")
	var ce *CmdError
	if !errors.As(err, &ce) || ce.ExitCode != 7 || ce.Node != "here" || string(ce.Stderr) != "bad\n" || string(ce.Stdout) != "out\n" {
		t.Fatalf("err = %#v", err)
	}

	dir := t.TempDir()
	if _, err := h.ReadFile(ctx, filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile(missing) = %v", err)
	}
	p := filepath.Join(dir, "a", "b", "sa.key")
	for _, mode := range []fs.FileMode{0o600, 0o644} {
		data := []byte("content " + mode.String())
		if err := h.WriteFile(ctx, p, data, mode); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		got, err := h.ReadFile(ctx, p)
		if fi.Mode() != mode || !bytes.Equal(got, data) || err != nil {
			t.Errorf("after write %v: mode %v, %q, %v", mode, fi.Mode(), got, err)
		}
	}
	assertNoTempFiles(t, dir)
	if err := h.WriteFile(ctx, filepath.Join(p, "below-a-file"), nil, 0o600); err == nil {
		t.Error("write below a file succeeded")
	}
	assertNoTempFiles(t, dir)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := h.DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestLocalHostCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The child sleep holds stdout; killing only sh would leave Run waiting.
	_, err := NewLocalHost("here").Run(ctx, "sleep 30; echo done")
	if time.Since(start) > 5*time.Second || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func TestShellQuote(t *testing.T) {
	for _, s := range []string{"", "plain", "/etc/kubernetes/pki/ca.crt", "it's", "a b", "$(reboot)", "`x`", "a\nb", `back\slash`, "'", "''", "*", "-n"} {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+ShellQuote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("ShellQuote(%q) = %s -> %q, %v", s, ShellQuote(s), out, err)
		}
	}
}

// The write script must refuse to install a file whose data did not fully
// arrive, which is what a dropped connection looks like to cat.
func TestWriteScriptShortWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("good"), 0o644)
	cmd := exec.Command("/bin/sh", "-c", writeScript(p, 10, 0o600, "x"))
	cmd.Stdin = strings.NewReader("short")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "received 5 of 10") {
		t.Fatalf("short write: %v %s", err, out)
	}
	if got, _ := os.ReadFile(p); string(got) != "good" {
		t.Errorf("target replaced by a short write: %q", got)
	}
	assertNoTempFiles(t, dir)

	cmd = exec.Command("/bin/sh", "-c", writeScript(filepath.Join(dir, "new", "g"), 3, 0o640, "y"))
	cmd.Stdin = strings.NewReader("abc")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	fi, err := os.Stat(filepath.Join(dir, "new", "g"))
	if err != nil || fi.Mode() != 0o640 {
		t.Fatalf("%v %v", fi, err)
	}
	// Parent directories keep the usual permissions, not the file's umask.
	if di, _ := os.Stat(filepath.Join(dir, "new")); di.Mode().Perm()&0o055 == 0 {
		t.Errorf("parent directory mode %v", di.Mode())
	}
}

func TestRemoteCommand(t *testing.T) {
	root := &SSHHost{user: "root"}
	user := &SSHHost{user: "ubuntu"}
	if got := root.remoteCommand("echo a && echo b"); got != "sh -c 'echo a && echo b'" {
		t.Errorf("root: %s", got)
	}
	// sudo must cover the whole command, redirections included.
	if got := user.remoteCommand("cat > /etc/x"); got != "sudo -n sh -c 'cat > /etc/x'" {
		t.Errorf("user: %s", got)
	}
}

func TestCmdErrorMessage(t *testing.T) {
	e := &CmdError{Node: "emei", Cmd: strings.Repeat("c", 1000), ExitCode: 2, Stdout: []byte("only stdout\n")}
	msg := e.Error()
	if !strings.Contains(msg, "emei") || !strings.Contains(msg, "code 2") || !strings.Contains(msg, "only stdout") || len(msg) > 500 {
		t.Errorf("message: %s", msg)
	}
	e = &CmdError{Node: "emei", Cmd: "x", ExitCode: -1, Err: context.Canceled}
	if !errors.Is(e, context.Canceled) || !strings.Contains(e.Error(), "canceled") {
		t.Errorf("cancel: %v", e)
	}
}
