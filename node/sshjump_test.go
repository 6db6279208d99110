package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostBlock is an ssh_config block for alias pointing at s, with s's user
// key unless key says otherwise ("" for none: the agent then).
func hostBlock(alias string, s *testSSHD, knownHosts, extra string) string {
	return fmt.Sprintf("Host %s\n  HostName %s\n  Port %d\n  User root\n  IdentityFile %s\n  UserKnownHostsFile %s\n  GlobalKnownHostsFile none\n%s\n",
		alias, s.listen, s.port, s.userKey, knownHosts, extra)
}

// writeClientFiles writes known_hosts with lines and an ssh_config built by
// config from the known_hosts path.
func writeClientFiles(t *testing.T, config func(knownHosts string) string, lines ...string) (cfgFile, khFile string) {
	t.Helper()
	dir := t.TempDir()
	khFile = filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(khFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile = filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(cfgFile, []byte(config(khFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgFile, khFile
}

// forwardedTo reports whether bastion's sshd (at LogLevel DEBUG1) opened a
// direct-tcpip channel to target for a client.
func forwardedTo(bastion, target *testSSHD) bool {
	return strings.Contains(bastion.logs.String(), fmt.Sprintf("target %s port %d", target.listen, target.port))
}

// bastionSSHD is an sshd that forwards only to permitOpen: a chain that
// tried to reach anything else through it, or skipped it, would fail.
func bastionSSHD(t *testing.T, permitOpen string) *testSSHD {
	return startSSHDWith(t, sshdConfig{extra: "LogLevel DEBUG1\nAllowTcpForwarding yes\nPermitOpen " + permitOpen})
}

// The node listens on 127.0.0.2, and each bastion may only forward to the
// next hop (PermitOpen): a successful command proves the chain went through
// every bastion in order, and the bastions' logs show the forwards.
func TestSSHProxyJump(t *testing.T) {
	isolateEnv(t)
	target := startSSHDWith(t, sshdConfig{listen: "127.0.0.2"})
	gate2 := bastionSSHD(t, target.addr())
	gate1 := bastionSSHD(t, gate2.addr())
	ctx := context.Background()
	known := []string{target.knownHostsLine("ed25519"), gate1.knownHostsLine("ed25519"), gate2.knownHostsLine("ed25519")}
	blocks := func(nodeExtra string) func(string) string {
		return func(kh string) string {
			return hostBlock("testnode", target, kh, nodeExtra) + hostBlock("gate1", gate1, kh, "") + hostBlock("gate2", gate2, kh, "")
		}
	}

	t.Run("one bastion from the ssh_config", func(t *testing.T) {
		cfg, _ := writeClientFiles(t, blocks("  ProxyJump gate2"), known...)
		// gate2 is reached directly here; in the two-hop cases it may
		// only be reached through gate1, which it cannot tell.
		h := dialTest(t, target, SSHOptions{ConfigFile: cfg})
		if out, err := h.Output(ctx, "echo through"); err != nil || out != "through\n" {
			t.Fatalf("Output = %q, %v", out, err)
		}
		if !forwardedTo(gate2, target) {
			t.Errorf("gate2's log shows no forward to %s", target.addr())
		}
		if len(h.jumps) != 1 {
			t.Fatalf("%d jump clients, want 1", len(h.jumps))
		}
		// Closing the host closes the bastion's connection too.
		jump := h.jumps[0]
		h.Close()
		closed := make(chan struct{})
		go func() { jump.Wait(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Error("the bastion's connection is still open after Close")
		}
	})

	t.Run("two bastions from the ssh_config", func(t *testing.T) {
		cfg, _ := writeClientFiles(t, blocks("  ProxyJump gate1,gate2"), known...)
		h := dialTest(t, target, SSHOptions{ConfigFile: cfg})
		if out, err := h.Output(ctx, "echo two hops"); err != nil || out != "two hops\n" {
			t.Fatalf("Output = %q, %v", out, err)
		}
		if !forwardedTo(gate1, gate2) || !forwardedTo(gate2, target) {
			t.Errorf("forwards: gate1→gate2 %v, gate2→node %v", forwardedTo(gate1, gate2), forwardedTo(gate2, target))
		}
		// Files and direct-tcpip work over the chain as over one hop.
		p := filepath.Join(t.TempDir(), "f")
		if err := h.WriteFile(ctx, p, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := h.ReadFile(ctx, p); err != nil || string(b) != "x\n" {
			t.Fatalf("ReadFile = %q, %v", b, err)
		}
	})

	t.Run("bastions from SSHOptions and per node", func(t *testing.T) {
		cfg, _ := writeClientFiles(t, blocks("  ProxyJump gate2"), known...)
		// The global list is wrong for this node (gate2 alone cannot
		// forward to gate1); the per-node one wins.
		h := dialTest(t, target, SSHOptions{ConfigFile: cfg, ProxyJump: "gate2,gate1",
			Nodes: map[string]SSHNodeOptions{"testnode": {ProxyJump: fmt.Sprintf("root@gate1,root@gate2:%d", gate2.port)}}})
		if _, err := h.Output(ctx, "true"); err != nil || len(h.jumps) != 2 {
			t.Fatalf("per-node ProxyJump: %v, %d jumps", err, len(h.jumps))
		}
		_, err := DialSSH(ctx, "testnode", SSHOptions{ConfigFile: cfg, ProxyJump: "gate2,gate1"})
		if err == nil || !strings.Contains(err.Error(), "node testnode: via bastion gate1") || !strings.Contains(err.Error(), "through bastion gate2") {
			t.Fatalf("gate2 may not forward to gate1; got %v", err)
		}
		t.Log(err)
	})

	t.Run("none disables the ssh_config's ProxyJump", func(t *testing.T) {
		// gate1 cannot forward to the node, so only a direct connection
		// works.
		cfg, _ := writeClientFiles(t, blocks("  ProxyJump gate1"), known...)
		if _, err := DialSSH(ctx, "testnode", SSHOptions{ConfigFile: cfg}); err == nil || !strings.Contains(err.Error(), "through bastion gate1") {
			t.Fatalf("gate1 to the node: %v", err)
		}
		h := dialTest(t, target, SSHOptions{ConfigFile: cfg, ProxyJump: "none"})
		if _, err := h.Output(ctx, "true"); err != nil || len(h.jumps) != 0 {
			t.Fatalf("ProxyJump none: %v, %d jumps", err, len(h.jumps))
		}
	})

	t.Run("a bastion's unknown host key is refused, naming the hop", func(t *testing.T) {
		cfg, _ := writeClientFiles(t, blocks("  ProxyJump gate1,gate2"), known[0], known[2])
		_, err := DialSSH(ctx, "testnode", SSHOptions{ConfigFile: cfg})
		var hk *HostKeyError
		if !errors.As(err, &hk) || hk.Bastion != "gate1" || !strings.HasPrefix(err.Error(), "node testnode: via bastion gate1 ("+gate1.addr()+")") {
			t.Fatalf("want gate1's HostKeyError, got %v", err)
		}
		t.Log(err)
	})

	t.Run("a bastion's auth failure names the hop", func(t *testing.T) {
		cfg, _ := writeClientFiles(t, func(kh string) string {
			return hostBlock("testnode", target, kh, "  ProxyJump gate1") +
				strings.Replace(hostBlock("gate1", gate1, kh, ""), gate1.userKey, target.userKey, 1)
		}, known...)
		_, err := DialSSH(ctx, "testnode", SSHOptions{ConfigFile: cfg})
		if err == nil || !strings.HasPrefix(err.Error(), "node testnode: via bastion gate1 ("+gate1.addr()+"): SSH handshake") {
			t.Fatalf("gate1 with the wrong key: %v", err)
		}
	})

	t.Run("the timeout bounds the whole chain", func(t *testing.T) {
		hang := blackhole(t)
		silent := startSSHDWith(t, sshdConfig{extra: "AllowTcpForwarding yes\nPermitOpen " + hang})
		_, port, _ := net.SplitHostPort(hang)
		cfg, _ := writeClientFiles(t, func(kh string) string {
			return "Host hangs\n  HostName 127.0.0.1\n  Port " + port + "\n  IdentityFile " + target.userKey + "\n  UserKnownHostsFile " + kh +
				"\n  ProxyJump silent\n" + hostBlock("silent", silent, kh, "")
		}, silent.knownHostsLine("ed25519"))
		start := time.Now()
		_, err := DialSSH(ctx, "hangs", SSHOptions{ConfigFile: cfg, Timeout: 700 * time.Millisecond})
		if took := time.Since(start); err == nil || took > 4*time.Second || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "node hangs") {
			t.Fatalf("dial through a bastion to a silent server: %v after %v", err, took)
		}
		t.Log(err)
	})
}
