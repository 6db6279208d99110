package node

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

const sshdPath = "/usr/sbin/sshd"

// testSSHD is a real OpenSSH server on 127.0.0.1 with throwaway keys.
type testSSHD struct {
	dir      string
	listen   string // the address sshd listens on, 127.0.0.1 unless told
	port     int
	hostKeys map[string]ssh.PublicKey // by ssh-keygen type: ed25519, ecdsa, rsa
	userKey  string                   // private key file accepted by the server
	logs     *syncBuffer
}

// syncBuffer lets a test read sshd's log while sshd is still writing it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// sessions is the number of sessions (commands) sshd has started; it logs
// each at LogLevel VERBOSE.
func (s *testSSHD) sessions() int {
	return strings.Count(s.logs.String(), "Starting session: ")
}

// waitSessions returns the session count once it has reached want, or
// after a timeout. A session's log line is written before its command runs,
// but reaches the buffer through a pipe, possibly after the call returned;
// the short settling wait lets a session beyond want show up too.
func (s *testSSHD) waitSessions(want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for s.sessions() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	return s.sessions()
}

func (s *testSSHD) addr() string { return net.JoinHostPort(s.listen, fmt.Sprint(s.port)) }

// knownHostsLine is the known_hosts entry for one of the server's keys.
func (s *testSSHD) knownHostsLine(keyType string) string {
	return fmt.Sprintf("[%s]:%d %s", s.listen, s.port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.hostKeys[keyType]))))
}

func sshKeygen(t *testing.T, keyType, file, passphrase string) {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-q", "-t", keyType, "-N", passphrase, "-C", "haadm-test", "-f", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -t %s: %v\n%s", keyType, err, out)
	}
}

func readPub(t *testing.T, file string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func freePort(t *testing.T, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startSSHD starts sshd with the given host key types; the first type is the
// one a test usually puts into known_hosts.
func startSSHD(t *testing.T, hostKeyTypes ...string) *testSSHD {
	t.Helper()
	return startSSHDWith(t, sshdConfig{hostKeyTypes: hostKeyTypes})
}

// sshdConfig is what a test changes about its sshd.
type sshdConfig struct {
	hostKeyTypes []string
	listen       string // default 127.0.0.1
	// extra lines for sshd_config (AllowTcpForwarding, PermitOpen,
	// LogLevel...); sshd takes the first value it reads for a keyword,
	// and these come first.
	extra string
}

func startSSHDWith(t *testing.T, sc sshdConfig) *testSSHD {
	t.Helper()
	hostKeyTypes := sc.hostKeyTypes
	if sc.listen == "" {
		sc.listen = "127.0.0.1"
	}
	if _, err := os.Stat(sshdPath); err != nil {
		t.Fatalf("%s not found (%v): install openssh-server, these tests need a real SSH server", sshdPath, err)
	}
	if len(hostKeyTypes) == 0 {
		hostKeyTypes = []string{"ed25519"}
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("creating /run/sshd: %v", err)
	}
	dir := t.TempDir()
	s := &testSSHD{dir: dir, listen: sc.listen, hostKeys: map[string]ssh.PublicKey{}, logs: &syncBuffer{}}

	var cfg strings.Builder
	cfg.WriteString(sc.extra + "\n")
	for _, typ := range hostKeyTypes {
		f := filepath.Join(dir, "host_"+typ)
		sshKeygen(t, typ, f, "")
		s.hostKeys[typ] = readPub(t, f+".pub")
		fmt.Fprintf(&cfg, "HostKey %s\n", f)
	}
	s.userKey = filepath.Join(dir, "id_ed25519")
	sshKeygen(t, "ed25519", s.userKey, "")
	authorized, err := os.ReadFile(s.userKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	authFile := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authFile, authorized, 0o600); err != nil {
		t.Fatal(err)
	}

	s.port = freePort(t, s.listen)
	// The keys file is also served through AuthorizedKeysCommand, which
	// sshd runs as root: a non-root test user could not read it in the
	// test's private temporary directory.
	fmt.Fprintf(&cfg, `Port %d
ListenAddress %s
AuthorizedKeysFile %s
AuthorizedKeysCommand /bin/cat %s
AuthorizedKeysCommandUser root
PidFile %s
PermitRootLogin yes
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AllowTcpForwarding yes
LogLevel VERBOSE
`, s.port, s.listen, authFile, authFile, filepath.Join(dir, "sshd.pid"))
	cfgFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(sshdPath, "-D", "-e", "-f", cfgFile)
	cmd.Stdout = s.logs
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.logs.String())
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			c.Close()
			return s
		}
		select {
		case <-exited:
			t.Fatalf("sshd exited: %s", s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s: %v\n%s", s.addr(), err, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clientFiles writes an ssh_config and a known_hosts for the server and
// returns the ssh_config path. knownHosts are the known_hosts lines.
func (s *testSSHD) clientConfig(t *testing.T, extra string, knownHosts ...string) (configFile, knownHostsFile string) {
	t.Helper()
	dir := t.TempDir()
	knownHostsFile = filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHostsFile, []byte(strings.Join(knownHosts, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	configFile = filepath.Join(dir, "ssh_config")
	cfg := fmt.Sprintf(`Host testnode
  HostName 127.0.0.1
  Port %d
  User root
  IdentityFile %s
  UserKnownHostsFile %s
  GlobalKnownHostsFile none
%s
`, s.port, s.userKey, knownHostsFile, extra)
	if err := os.WriteFile(configFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return configFile, knownHostsFile
}

// isolateEnv keeps the developer's agent and ~/.ssh out of the test.
func isolateEnv(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("HOME", t.TempDir())
}

func dialTest(t *testing.T, s *testSSHD, opts SSHOptions) *SSHHost {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := DialSSH(ctx, "testnode", opts)
	if err != nil {
		t.Fatalf("DialSSH: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}
