package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// warnings collects what DialSSH logs.
type warnings struct {
	mu    sync.Mutex
	lines []string
}

func (w *warnings) logf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, fmt.Sprintf(format, args...))
}

func (w *warnings) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

// assertWarned checks for exactly one line per endpoint in want (its
// prefix, e.g. "node testnode" or "node testnode: via bastion gate"), each
// with the key's fingerprint and why.
func assertWarned(t *testing.T, w *warnings, why string, want map[string]ssh.PublicKey) {
	t.Helper()
	lines := w.get()
	if len(lines) != len(want) {
		t.Errorf("%d warnings, want %d: %q", len(lines), len(want), lines)
	}
	for who, key := range want {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, "WARNING: "+who+": host key ED25519 "+ssh.FingerprintSHA256(key)+" NOT verified against known_hosts (") &&
				strings.Contains(l, why) && strings.HasSuffix(l, "haadm copies the cluster's CA keys over this connection") && !strings.Contains(l, "\n") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d warnings for %s with %q, want 1: %q", n, who, why, lines)
		}
	}
}

func TestSSHHostKeyWarnings(t *testing.T) {
	isolateEnv(t)
	target := startSSHDWith(t, sshdConfig{listen: "127.0.0.2"})
	gate := bastionSSHD(t, target.addr())
	ctx := context.Background()
	nodeKey, gateKey := target.hostKeys["ed25519"], gate.hostKeys["ed25519"]
	direct := func(nodeExtra string, known ...string) string {
		cfg, _ := writeClientFiles(t, func(kh string) string { return hostBlock("testnode", target, kh, nodeExtra) }, known...)
		return cfg
	}

	t.Run("StrictHostKeyChecking yes refuses an unknown key", func(t *testing.T) {
		w := &warnings{}
		cfg, kh := writeClientFiles(t, func(kh string) string { return hostBlock("testnode", target, kh, "  StrictHostKeyChecking yes") })
		_, err := DialSSH(ctx, "testnode", SSHOptions{ConfigFile: cfg, Logf: w.logf})
		var hk *HostKeyError
		if !errors.As(err, &hk) || hk.Changed() || hk.Fingerprint != ssh.FingerprintSHA256(nodeKey) {
			t.Fatalf("want an unknown-key HostKeyError, got %v", err)
		}
		if b, _ := os.ReadFile(kh); strings.TrimSpace(string(b)) != "" || len(w.get()) != 0 {
			t.Errorf("known_hosts %q, warnings %q after a refusal", b, w.get())
		}
	})
	t.Run("verified keys are not warned about", func(t *testing.T) {
		w := &warnings{}
		cfg, _ := writeClientFiles(t, func(kh string) string {
			return hostBlock("testnode", target, kh, "  ProxyJump gate") + hostBlock("gate", gate, kh, "")
		}, target.knownHostsLine("ed25519"), gate.knownHostsLine("ed25519"))
		dialTest(t, target, SSHOptions{ConfigFile: cfg, Logf: w.logf})
		// Nor with the insecure option, when known_hosts vouches anyway.
		dialTest(t, target, SSHOptions{ConfigFile: cfg, Logf: w.logf, InsecureIgnoreHostKey: true})
		if l := w.get(); len(l) != 0 {
			t.Errorf("warnings for verified keys: %q", l)
		}
	})
	t.Run("StrictHostKeyChecking no", func(t *testing.T) {
		w := &warnings{}
		dialTest(t, target, SSHOptions{ConfigFile: direct("  StrictHostKeyChecking no"), Logf: w.logf})
		assertWarned(t, w, "StrictHostKeyChecking no", map[string]ssh.PublicKey{"node testnode": nodeKey})
	})
	t.Run("accept-new, once", func(t *testing.T) {
		w := &warnings{}
		cfg := direct("  StrictHostKeyChecking accept-new")
		dialTest(t, target, SSHOptions{ConfigFile: cfg, Logf: w.logf})
		assertWarned(t, w, "StrictHostKeyChecking accept-new: first seen, added to ", map[string]ssh.PublicKey{"node testnode": nodeKey})
		// Recorded: the next connection is verified, and silent.
		w2 := &warnings{}
		dialTest(t, target, SSHOptions{ConfigFile: cfg, Logf: w2.logf})
		if l := w2.get(); len(l) != 0 {
			t.Errorf("second dial warned: %q", l)
		}
	})
	t.Run("insecure", func(t *testing.T) {
		w := &warnings{}
		dialTest(t, target, SSHOptions{ConfigFile: direct(""), Logf: w.logf, InsecureIgnoreHostKey: true})
		assertWarned(t, w, "(insecure-ignore-host-key)", map[string]ssh.PublicKey{"node testnode": nodeKey})
	})
	t.Run("insecure with a changed key says so", func(t *testing.T) {
		w := &warnings{}
		wrong := fmt.Sprintf("[%s]:%d %s", target.listen, target.port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(gateKey))))
		dialTest(t, target, SSHOptions{ConfigFile: direct("", wrong), Logf: w.logf, InsecureIgnoreHostKey: true})
		assertWarned(t, w, "known_hosts has a DIFFERENT key for "+target.addr(), map[string]ssh.PublicKey{"node testnode": nodeKey})
	})
	t.Run("bastions are warned about too", func(t *testing.T) {
		gateWho := fmt.Sprintf("node testnode: via bastion gate (%s)", gate.addr())
		w := &warnings{}
		cfg, _ := writeClientFiles(t, func(kh string) string {
			return hostBlock("testnode", target, kh, "  ProxyJump gate") + hostBlock("gate", gate, kh, "  StrictHostKeyChecking accept-new")
		}, target.knownHostsLine("ed25519"))
		dialTest(t, target, SSHOptions{ConfigFile: cfg, Logf: w.logf})
		assertWarned(t, w, "StrictHostKeyChecking accept-new", map[string]ssh.PublicKey{gateWho: gateKey})

		w = &warnings{}
		cfg, _ = writeClientFiles(t, func(kh string) string {
			return hostBlock("testnode", target, kh, "  ProxyJump gate") + hostBlock("gate", gate, kh, "")
		})
		dialTest(t, target, SSHOptions{ConfigFile: cfg, Logf: w.logf, InsecureIgnoreHostKey: true})
		assertWarned(t, w, "insecure-ignore-host-key", map[string]ssh.PublicKey{gateWho: gateKey, "node testnode": nodeKey})
	})
}

// serveAgent serves keys as an ssh-agent on a unix socket, sets
// SSH_AUTH_SOCK to it and counts the clients that connected.
func serveAgent(t *testing.T, keyFiles ...string) *atomic.Int32 {
	t.Helper()
	keyring := agent.NewKeyring()
	for _, f := range keyFiles {
		pemBytes, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := ssh.ParseRawPrivateKey(pemBytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
			t.Fatal(err)
		}
	}
	sock := t.TempDir() + "/agent.sock"
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var clients atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			clients.Add(1)
			go func() {
				defer c.Close()
				agent.ServeAgent(keyring, c)
			}()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	return &clients
}

// The keys are only in the agent (no IdentityFile, an empty HOME), for the
// bastion and the node alike.
func TestSSHAgentThroughBastion(t *testing.T) {
	isolateEnv(t)
	target := startSSHDWith(t, sshdConfig{listen: "127.0.0.2"})
	gate := bastionSSHD(t, target.addr())
	noKey := func(block string, s *testSSHD) string {
		return strings.Replace(block, "  IdentityFile "+s.userKey+"\n", "", 1)
	}
	cfg, _ := writeClientFiles(t, func(kh string) string {
		return noKey(hostBlock("testnode", target, kh, "  ProxyJump gate"), target) + noKey(hostBlock("gate", gate, kh, ""), gate)
	}, target.knownHostsLine("ed25519"), gate.knownHostsLine("ed25519"))
	if b, _ := os.ReadFile(cfg); strings.Contains(string(b), "IdentityFile") {
		t.Fatalf("config still names a key:\n%s", b)
	}

	_, err := DialSSH(context.Background(), "testnode", SSHOptions{ConfigFile: cfg})
	if err == nil || !strings.Contains(err.Error(), "no usable SSH key") || !strings.Contains(err.Error(), "via bastion gate") {
		t.Fatalf("without an agent: %v", err)
	}

	clients := serveAgent(t, gate.userKey, target.userKey)
	h := dialTest(t, target, SSHOptions{ConfigFile: cfg})
	if out, err := h.Output(context.Background(), "echo agent"); err != nil || out != "agent\n" {
		t.Fatalf("Output = %q, %v", out, err)
	}
	if n := clients.Load(); n != 2 {
		t.Errorf("%d agent clients, want one per hop (2)", n)
	}
	if !forwardedTo(gate, target) {
		t.Error("the bastion's log shows no forward to the node")
	}
}
