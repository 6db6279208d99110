package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"sync"
	"testing"
)

func TestFake(t *testing.T) {
	ctx := context.Background()
	f := NewFake("emei")
	f.Respond("kubeadm version", "v1.36.3\n", nil)
	f.Respond("kubeadm", "generic\n", nil)
	f.Fail("systemctl restart", 5, "unit not found")
	f.SetHandler(func(cmd string) (string, error) {
		if strings.HasPrefix(cmd, "hostname") {
			return "emei\n", nil
		}
		return "", fmt.Errorf("unexpected %q", cmd)
	})

	if out, _ := f.Output(ctx, "kubeadm version -o short"); out != "v1.36.3\n" {
		t.Errorf("longest prefix: %q", out)
	}
	if out, _ := f.Run(ctx, "kubeadm init"); out != "generic\n" {
		t.Errorf("prefix: %q", out)
	}
	_, err := f.Run(ctx, "systemctl restart kubelet")
	var ce *CmdError
	if !errors.As(err, &ce) || ce.ExitCode != 5 || ce.Cmd != "systemctl restart kubelet" {
		t.Errorf("Fail: %v", err)
	}
	if out, _ := f.Output(ctx, "hostname -f"); out != "emei\n" {
		t.Errorf("handler: %q", out)
	}

	if _, err := f.ReadFile(ctx, "/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	f.WriteFile(ctx, "/a", []byte("A"), 0o600)
	if b, m, ok := f.File("/a"); string(b) != "A" || m != 0o600 || !ok {
		t.Errorf("File: %q %v %v", b, m, ok)
	}
	if _, err := f.DialContext(ctx, "tcp", "127.0.0.1:2379"); err == nil {
		t.Error("dial without SetDial succeeded")
	}
	f.SetDial(func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, _ := net.Pipe()
		return c, nil
	})
	if c, err := f.DialContext(ctx, "tcp", "127.0.0.1:2379"); err != nil {
		t.Error(err)
	} else {
		c.Close()
	}
	f.Close()

	want := []CallKind{CallOutput, CallRun, CallRun, CallOutput, CallRead, CallWrite, CallDial, CallDial, CallClose}
	calls := f.Calls()
	if len(calls) != len(want) {
		t.Fatalf("calls: %+v", calls)
	}
	for i, c := range calls {
		if c.Kind != want[i] {
			t.Errorf("call %d: %v, want %v", i, c.Kind, want[i])
		}
	}
	if cmds := f.Commands(); len(cmds) != 4 || cmds[2] != "systemctl restart kubelet" {
		t.Errorf("Commands: %q", cmds)
	}

	// Unscripted commands fail loudly.
	g := NewFake("g")
	if _, err := g.Run(ctx, "rm -rf /"); !errors.As(err, &ce) || ce.ExitCode != 127 {
		t.Errorf("unscripted: %v", err)
	}
}

func TestFakeConcurrent(t *testing.T) {
	f := NewFake("emei")
	f.Respond("", "ok", nil)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			p := fmt.Sprintf("/f%d", i)
			f.Run(ctx, "x")
			f.WriteFile(ctx, p, []byte("x"), 0o644)
			f.ReadFile(ctx, p)
		}()
	}
	wg.Wait()
	if len(f.Calls()) != 60 || len(f.Files()) != 20 {
		t.Fatalf("%d calls, %d files", len(f.Calls()), len(f.Files()))
	}
}
