package node

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func TestSSHCommands(t *testing.T) {
	isolateEnv(t)
	s := startSSHD(t)
	cfg, _ := s.clientConfig(t, "", s.knownHostsLine("ed25519"))
	h := dialTest(t, s, SSHOptions{ConfigFile: cfg})
	ctx := context.Background()

	if h.Name() != "testnode" || h.User() != "root" || h.Addr() != s.addr() {
		t.Errorf("Name/User/Addr = %q %q %q", h.Name(), h.User(), h.Addr())
	}
	out, err := h.Output(ctx, "echo hello; echo noise >&2")
	if err != nil || out != "hello\n" {
		t.Fatalf("Output = %q, %v", out, err)
	}
	// sh -c semantics: pipes, quotes, variables, $(...) all as in a shell.
	out, err = h.Run(ctx, `x="it's"; printf '%s|' "$x" $(echo a b) | tr a A`)
	if err != nil || out != "it's|A|b|" {
		t.Fatalf("Run = %q, %v", out, err)
	}

	cmd := "echo partial; echo 'something broke' >&2; exit 3"
	_, err = h.Run(ctx, cmd)
	var ce *CmdError
	if !errors.As(err, &ce) {
		t.Fatalf("want *CmdError, got %T %v", err, err)
	}
	t.Log(err)
	if ce.Node != "testnode" || ce.Cmd != cmd || ce.ExitCode != 3 ||
		string(ce.Stdout) != "partial\n" || string(ce.Stderr) != "something broke\n" {
		t.Errorf("CmdError = %+v", ce)
	}
	for _, want := range []string{"testnode", "exit 3", "code 3", "something broke"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	// Long output is cut to its end, which is where the reason is.
	_, err = h.Output(ctx, "i=0; while [ $i -lt 500 ]; do echo line$i >&2; i=$((i+1)); done; exit 1")
	if msg := err.Error(); !strings.Contains(msg, "line499") || strings.Contains(msg, "line1\n") || len(msg) > 2600 {
		t.Errorf("long output not trimmed to its tail: %d bytes", len(msg))
	}
}

func TestSSHFiles(t *testing.T) {
	isolateEnv(t)
	s := startSSHD(t)
	cfg, _ := s.clientConfig(t, "", s.knownHostsLine("ed25519"))
	h := dialTest(t, s, SSHOptions{ConfigFile: cfg})
	ctx := context.Background()
	dir := t.TempDir()

	_, err := h.ReadFile(ctx, filepath.Join(dir, "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile(missing) = %v, want fs.ErrNotExist", err)
	}
	// A directory exists but cannot be read: a CmdError, not "not exist".
	_, err = h.ReadFile(ctx, dir)
	var ce *CmdError
	if errors.Is(err, fs.ErrNotExist) || !errors.As(err, &ce) {
		t.Fatalf("ReadFile(dir) = %v, want a CmdError", err)
	}

	binary := make([]byte, 256*40)
	for i := range binary {
		binary[i] = byte(i)
	}
	files := []struct {
		path string
		mode fs.FileMode
		data []byte
	}{
		{filepath.Join(dir, "pki", "etcd", "ca.key"), 0o600, []byte("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")},
		{filepath.Join(dir, "pki", "ca.crt"), 0o644, []byte("cert\n")},
		{filepath.Join(dir, "odd name's dir", "bin $x"), 0o640, binary},
		{filepath.Join(dir, "empty"), 0o600, nil},
	}
	for _, f := range files {
		if err := h.WriteFile(ctx, f.path, f.data, f.mode); err != nil {
			t.Fatalf("WriteFile(%s): %v", f.path, err)
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.path, fi.Mode(), f.mode)
		}
		got, err := h.ReadFile(ctx, f.path)
		if err != nil || !bytes.Equal(got, f.data) {
			t.Errorf("ReadFile(%s) = %d bytes, %v; want %d bytes", f.path, len(got), err, len(f.data))
		}
	}

	// Overwriting replaces content and mode, through a new inode (rename),
	// and leaves no temporary file behind.
	target := files[1].path
	before, _ := os.Stat(target)
	if err := h.WriteFile(ctx, target, []byte("new cert\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(target)
	if got, _ := os.ReadFile(target); string(got) != "new cert\n" || after.Mode() != 0o600 {
		t.Errorf("overwrite: %q %v", got, after.Mode())
	}
	if os.SameFile(before, after) {
		t.Error("overwrite reused the inode: not written through a rename")
	}
	assertNoTempFiles(t, dir)

	// A failing write (the parent is a file) is a CmdError with the reason.
	err = h.WriteFile(ctx, filepath.Join(target, "sub"), []byte("x"), 0o644)
	if !errors.As(err, &ce) || !strings.Contains(string(ce.Stderr), "ca.crt") {
		t.Errorf("write below a file: %v", err)
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if strings.Contains(d.Name(), "haadm-tmp") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

func TestSSHDialContext(t *testing.T) {
	isolateEnv(t)
	s := startSSHD(t)
	cfg, _ := s.clientConfig(t, "", s.knownHostsLine("ed25519"))
	h := dialTest(t, s, SSHOptions{ConfigFile: cfg})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line := make([]byte, 5)
		io.ReadFull(c, line)
		c.Write(append([]byte("echo:"), line...))
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := h.DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "echo:hello" {
		t.Fatalf("got %q, %v", got, err)
	}

	if _, err := h.DialContext(ctx, "tcp", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "testnode") {
		t.Errorf("dial to a closed port: %v", err)
	}
}

func TestSSHHostKeyVerification(t *testing.T) {
	isolateEnv(t)
	s := startSSHD(t)
	ctx := context.Background()
	other := filepath.Join(t.TempDir(), "other")
	sshKeygen(t, "ed25519", other, "")
	otherPub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(readPub(t, other+".pub"))))
	fingerprint := ssh.FingerprintSHA256(s.hostKeys["ed25519"])

	t.Run("unknown", func(t *testing.T) {
		// known_hosts knows other hosts, but not this one.
		cfg, kh := s.clientConfig(t, "", "otherhost.example "+otherPub)
		_, err := DialSSH(ctx, "testnode", SSHOptions{ConfigFile: cfg})
		var hk *HostKeyError
		if !errors.As(err, &hk) || hk.Changed() {
			t.Fatalf("want unknown-host HostKeyError, got %v", err)
		}
		t.Log(err)
		for _, want := range []string{"testnode", s.addr(), fingerprint, "unknown", "ssh-keyscan", kh, "insecure"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not mention %q:\n%v", want, err)
			}
		}
	})
	t.Run("empty known_hosts", func(t *testing.T) {
		cfg, _ := s.clientConfig(t, "")
		_, err := DialSSH(ctx, "testnode", SSHOptions{ConfigFile: cfg})
		var hk *HostKeyError
		if !errors.As(err, &hk) || !strings.Contains(err.Error(), fingerprint) {
			t.Fatalf("want HostKeyError with the fingerprint, got %v", err)
		}
	})
	t.Run("missing known_hosts", func(t *testing.T) {
		cfg, kh := s.clientConfig(t, "")
		os.Remove(kh)
		_, err := DialSSH(ctx, "testnode", SSHOptions{ConfigFile: cfg})
		var hk *HostKeyError
		if !errors.As(err, &hk) {
			t.Fatalf("want HostKeyError, got %v", err)
		}
	})
	t.Run("changed", func(t *testing.T) {
		line := strings.Fields(s.knownHostsLine("ed25519"))[0] + " " + otherPub
		cfg, _ := s.clientConfig(t, "", line)
		_, err := DialSSH(ctx, "testnode", SSHOptions{ConfigFile: cfg})
		var hk *HostKeyError
		if !errors.As(err, &hk) || !hk.Changed() {
			t.Fatalf("want changed-key HostKeyError, got %v", err)
		}
		t.Log(err)
		for _, want := range []string{"CHANGED", "man-in-the-middle", fingerprint, "testnode", "ssh-keygen -R"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not mention %q:\n%v", want, err)
			}
		}
	})
	t.Run("changed even with accept-new", func(t *testing.T) {
		line := strings.Fields(s.knownHostsLine("ed25519"))[0] + " " + otherPub
		cfg, _ := s.clientConfig(t, "  StrictHostKeyChecking accept-new", line)
		_, err := DialSSH(ctx, "testnode", SSHOptions{ConfigFile: cfg})
		var hk *HostKeyError
		if !errors.As(err, &hk) || !hk.Changed() {
			t.Fatalf("want changed-key HostKeyError, got %v", err)
		}
	})
	t.Run("insecure opt-in", func(t *testing.T) {
		cfg, _ := s.clientConfig(t, "")
		h := dialTest(t, s, SSHOptions{ConfigFile: cfg, InsecureIgnoreHostKey: true})
		if out, err := h.Output(ctx, "echo ok"); err != nil || out != "ok\n" {
			t.Fatalf("Output = %q, %v", out, err)
		}
	})
	t.Run("accept-new records the key", func(t *testing.T) {
		cfg, kh := s.clientConfig(t, "  StrictHostKeyChecking accept-new")
		var logged []string
		dialTest(t, s, SSHOptions{ConfigFile: cfg, Logf: func(f string, a ...any) { logged = append(logged, f) }})
		b, _ := os.ReadFile(kh)
		if !strings.Contains(string(b), "[127.0.0.1]:") || len(logged) != 1 {
			t.Fatalf("known_hosts after accept-new: %q, log %q", b, logged)
		}
		strict, _ := s.clientConfig(t, "")
		os.WriteFile(filepath.Join(filepath.Dir(strict), "known_hosts"), b, 0o600)
		dialTest(t, s, SSHOptions{ConfigFile: strict})
	})
}

// A server with several host keys presents the one it prefers unless the
// client asks for the type it knows; each type alone in known_hosts must do.
func TestSSHHostKeyAlgorithms(t *testing.T) {
	isolateEnv(t)
	s := startSSHD(t, "ed25519", "ecdsa", "rsa")
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		t.Run(typ, func(t *testing.T) {
			cfg, _ := s.clientConfig(t, "", s.knownHostsLine(typ))
			h := dialTest(t, s, SSHOptions{ConfigFile: cfg})
			if _, err := h.Output(context.Background(), "true"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSSHCancel(t *testing.T) {
	isolateEnv(t)
	s := startSSHD(t)
	cfg, _ := s.clientConfig(t, "", s.knownHostsLine("ed25519"))
	h := dialTest(t, s, SSHOptions{ConfigFile: cfg})

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.Run(ctx, "sleep 30")
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("cancelled command took %v", took)
	}
	var ce *CmdError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ce) || ce.Cmd != "sleep 30" {
		t.Fatalf("err = %v", err)
	}
	// The connection survives a cancelled session.
	if out, err := h.Output(context.Background(), "echo still"); err != nil || out != "still\n" {
		t.Fatalf("after cancel: %q, %v", out, err)
	}
	// A write cancelled before it starts does nothing.
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	p := filepath.Join(t.TempDir(), "f")
	if err := h.WriteFile(done, p, []byte("x"), 0o644); !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteFile with cancelled ctx: %v", err)
	}
}

// blackhole accepts TCP connections and never says anything, like a node
// whose sshd hangs.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}

func TestSSHDialTimeout(t *testing.T) {
	isolateEnv(t)
	s := startSSHD(t)
	_, port, _ := net.SplitHostPort(blackhole(t))
	cfg, _ := s.clientConfig(t, "\nHost hangs\n  HostName 127.0.0.1\n  Port "+port+"\n  IdentityFile "+s.userKey)

	start := time.Now()
	_, err := DialSSH(context.Background(), "hangs", SSHOptions{ConfigFile: cfg, Timeout: 300 * time.Millisecond})
	if err == nil || time.Since(start) > 3*time.Second || !strings.Contains(err.Error(), "hangs") {
		t.Fatalf("dial to a silent server: %v after %v", err, time.Since(start))
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	_, err = DialSSH(ctx, "hangs", SSHOptions{ConfigFile: cfg})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 3*time.Second {
		t.Fatalf("cancelled dial: %v after %v", err, time.Since(start))
	}
}

func TestSSHAuth(t *testing.T) {
	isolateEnv(t)
	s := startSSHD(t)
	ctx := context.Background()

	// A passphrase-protected copy of the accepted key.
	pemBytes, _ := os.ReadFile(s.userKey)
	raw, err := ssh.ParseRawPrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	enc := filepath.Join(t.TempDir(), "id_enc")
	block, err := ssh.MarshalPrivateKeyWithPassphrase(raw, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(enc, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _ := s.clientConfig(t, "  IdentitiesOnly yes", s.knownHostsLine("ed25519"))
	cfgText, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(cfgText, []byte(s.userKey), []byte(enc), 1), 0o600)

	_, err = DialSSH(ctx, "testnode", SSHOptions{ConfigFile: cfg})
	if err == nil || !strings.Contains(err.Error(), "passphrase") || !strings.Contains(err.Error(), "ssh-add") {
		t.Fatalf("encrypted key without agent: %v", err)
	}
	t.Log(err)

	// With the key in an agent, IdentitiesOnly still lets it be used.
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	// Another agent key that IdentitiesOnly must skip; it would be tried
	// first otherwise.
	otherFile := filepath.Join(t.TempDir(), "other")
	sshKeygen(t, "ed25519", otherFile, "")
	otherPem, _ := os.ReadFile(otherFile)
	otherRaw, _ := ssh.ParseRawPrivateKey(otherPem)
	keyring.Add(agent.AddedKey{PrivateKey: otherRaw})
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				agent.ServeAgent(keyring, c)
			}()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	h := dialTest(t, s, SSHOptions{ConfigFile: cfg})
	if _, err := h.Output(ctx, "true"); err != nil {
		t.Fatal(err)
	}

	// A key the server does not accept: the error says who and where.
	wrongCfg, _ := s.clientConfig(t, "  IdentitiesOnly yes", s.knownHostsLine("ed25519"))
	cfgText, _ = os.ReadFile(wrongCfg)
	os.WriteFile(wrongCfg, bytes.Replace(cfgText, []byte(s.userKey), []byte(otherFile), 1), 0o600)
	t.Setenv("SSH_AUTH_SOCK", "")
	_, err = DialSSH(ctx, "testnode", SSHOptions{ConfigFile: wrongCfg})
	if err == nil || !strings.Contains(err.Error(), "testnode") || !strings.Contains(err.Error(), "root") {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestDialAllSSH(t *testing.T) {
	isolateEnv(t)
	s := startSSHD(t)
	_, hangPort, _ := net.SplitHostPort(blackhole(t))
	extra := "\nHost hangs\n  HostName 127.0.0.1\n  Port " + hangPort + "\n  IdentityFile " + s.userKey +
		"\nHost refused\n  HostName 127.0.0.1\n  Port 1\n  IdentityFile " + s.userKey
	cfg, _ := s.clientConfig(t, extra, s.knownHostsLine("ed25519"))

	start := time.Now()
	hosts, err := DialAll(context.Background(), []string{"testnode", "hangs", "refused", "testnode"}, 2*time.Second, SSHDialer(SSHOptions{ConfigFile: cfg}))
	took := time.Since(start)
	defer CloseAll(hosts)
	if took > 4*time.Second {
		t.Errorf("DialAll took %v", took)
	}
	var ue *UnreachableError
	if !errors.As(err, &ue) || strings.Join(ue.Nodes(), ",") != "hangs,refused" || ue.Total != 3 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "2 of 3") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error does not explain: %v", err)
	}
	t.Log(err)
	if len(hosts) != 1 || hosts["testnode"] == nil {
		t.Fatalf("hosts = %v", hosts)
	}
	if out, err := hosts["testnode"].Output(context.Background(), "echo up"); err != nil || out != "up\n" {
		t.Fatalf("Output = %q, %v", out, err)
	}
}

// More parallel commands than sshd's MaxSessions (10) on one connection.
func TestSSHConcurrentSessions(t *testing.T) {
	isolateEnv(t)
	s := startSSHD(t)
	cfg, _ := s.clientConfig(t, "", s.knownHostsLine("ed25519"))
	h := dialTest(t, s, SSHOptions{ConfigFile: cfg})
	errs := make(chan error, 25)
	for i := range 25 {
		go func() {
			want := fmt.Sprintf("n%d\n", i)
			out, err := h.Output(context.Background(), "sleep 0.2; echo n"+fmt.Sprint(i))
			if err == nil && out != want {
				err = fmt.Errorf("got %q, want %q", out, want)
			}
			errs <- err
		}()
	}
	for range 25 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
