package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	sudoTestUser   = "haadm-sudo-test"   // gets NOPASSWD sudo
	nosudoTestUser = "haadm-nosudo-test" // gets none, or a broken one
)

// testUser makes sure a system user exists that sshd lets in: sshd without
// PAM refuses accounts whose password field is locked ("!"), so it is set
// to "*" (no password, not locked). Users are kept across runs.
func testUser(t *testing.T, name string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create the test users and their sudoers entries (CI runs these tests as root)")
	}
	if _, err := user.Lookup(name); err != nil {
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v\n%s", name, err, out)
		}
	}
	if out, err := exec.Command("usermod", "-p", "*", name).CombinedOutput(); err != nil {
		t.Fatalf("usermod %s: %v\n%s", name, err, out)
	}
}

// sudoers installs an /etc/sudoers.d file for the test and removes it
// afterwards; visudo checks it first, since a broken file breaks all sudo.
func sudoers(t *testing.T, name, content string) {
	t.Helper()
	if _, err := exec.LookPath("sudo"); err != nil {
		t.Fatalf("sudo not installed (%v): apt-get install sudo (lab/deps.sh does)", err)
	}
	tmp := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(tmp, []byte(content), 0o440); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("visudo", "-cf", tmp).CombinedOutput(); err != nil {
		t.Fatalf("visudo -cf: %v\n%s", err, out)
	}
	f := filepath.Join("/etc/sudoers.d", name)
	if err := os.WriteFile(f, []byte(content), 0o440); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f) })
}

func TestSSHSudoUser(t *testing.T) {
	isolateEnv(t)
	testUser(t, sudoTestUser)
	sudoers(t, "haadm-test-sudo", sudoTestUser+" ALL=(ALL) NOPASSWD: ALL\n")
	s := startSSHD(t)
	cfg, _ := s.clientConfig(t, "", s.knownHostsLine("ed25519"))
	h := dialTest(t, s, SSHOptions{ConfigFile: cfg, User: sudoTestUser})
	ctx := context.Background()
	if h.User() != sudoTestUser {
		t.Fatalf("User() = %q", h.User())
	}

	// The login really is the test user, the commands really run as root.
	if out, err := h.Output(ctx, "id -un; echo $SUDO_USER"); err != nil || out != "root\n"+sudoTestUser+"\n" {
		t.Fatalf("Output(id) = %q, %v", out, err)
	}
	if out, err := h.Run(ctx, "id -u"); err != nil || out != "0\n" {
		t.Fatalf("Run(id -u) = %q, %v", out, err)
	}

	dir := t.TempDir() // root's, 0700: only root gets in
	secret := filepath.Join(dir, "ca.key")
	if err := os.WriteFile(secret, []byte("only root reads this\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := h.ReadFiles(ctx, []string{secret, filepath.Join(dir, "missing")})
	if err != nil || string(got[secret].Data) != "only root reads this\n" || got[secret].Mode != 0o600 || got[secret].UID != 0 || len(got) != 1 {
		t.Fatalf("ReadFiles = %+v, %v", got, err)
	}
	if b, err := h.ReadFile(ctx, secret); err != nil || string(b) != "only root reads this\n" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}

	owned := func(p string, mode os.FileMode, uid, gid uint32) {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != mode || st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", p, fi.Mode().Perm(), st.Uid, st.Gid, mode, uid, gid)
		}
	}
	one := filepath.Join(dir, "pki", "one.crt")
	if err := h.WriteFile(ctx, one, []byte("cert\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	owned(one, 0o644, 0, 0)
	files := []File{
		{Path: filepath.Join(dir, "etcd"), Dir: true, Mode: 0o700, UID: 0, GID: 0},
		{Path: filepath.Join(dir, "etcd", "peer.key"), Data: []byte("key\n"), Mode: 0o600},
		{Path: filepath.Join(dir, "kubelet.conf"), Data: []byte("conf\n"), Mode: 0o640, UID: 1234, GID: 5678},
	}
	if err := h.WriteFiles(ctx, files); err != nil {
		t.Fatal(err)
	}
	owned(files[0].Path, 0o700, 0, 0)
	owned(files[1].Path, 0o600, 0, 0)
	owned(files[2].Path, 0o640, 1234, 5678)

	data := bytes.Repeat([]byte("snapshot"), 50000)
	sum := sha256.Sum256(data)
	up := filepath.Join(dir, "snap", "etcd.db")
	if err := h.Upload(ctx, Stream{Path: up, Mode: 0o600, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Data: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	owned(up, 0o600, 0, 0)
	if b, _ := os.ReadFile(up); !bytes.Equal(b, data) {
		t.Errorf("uploaded %d bytes, want %d", len(b), len(data))
	}
	assertNoTempFiles(t, dir)
}

// A user whose sudo cannot work unattended is refused at dial time, with
// what to change on the node, before any command of haadm ran.
func TestSSHSudoRefused(t *testing.T) {
	isolateEnv(t)
	testUser(t, nosudoTestUser)
	if _, err := exec.LookPath("sudo"); err != nil {
		t.Fatalf("sudo not installed (%v): apt-get install sudo (lab/deps.sh does)", err)
	}
	ctx := context.Background()
	dial := func(t *testing.T, s *testSSHD) error {
		t.Helper()
		cfg, _ := s.clientConfig(t, "", s.knownHostsLine("ed25519"))
		h, err := DialSSH(ctx, "testnode", SSHOptions{ConfigFile: cfg, User: nosudoTestUser})
		if err == nil {
			h.Close()
			t.Fatal("DialSSH succeeded")
		}
		t.Log(err)
		// The probe is the only command that ran.
		if n := s.waitSessions(1); n != 1 {
			t.Errorf("%d sessions, want only the sudo probe", n)
		}
		return err
	}
	mentions := func(t *testing.T, err error, want ...string) {
		t.Helper()
		for _, w := range append(want, "node testnode", nosudoTestUser, "nothing was changed") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error does not mention %q:\n%v", w, err)
			}
		}
	}

	t.Run("password required", func(t *testing.T) {
		err := dial(t, startSSHD(t))
		mentions(t, err, "a password is required", nosudoTestUser+" ALL=(ALL) NOPASSWD: ALL", "/etc/sudoers.d/")
	})
	t.Run("requiretty", func(t *testing.T) {
		sudoers(t, "haadm-test-nosudo", "Defaults:"+nosudoTestUser+" requiretty\n"+nosudoTestUser+" ALL=(ALL) NOPASSWD: ALL\n")
		err := dial(t, startSSHD(t))
		mentions(t, err, "requiretty", "!requiretty")
	})
	t.Run("sudo missing", func(t *testing.T) {
		// sshd's SetEnv comes after its default PATH, so the login shell
		// finds no sudo, as on a node without it.
		err := dial(t, startSSHDWith(t, sshdConfig{extra: "SetEnv PATH=/nonexistent"}))
		mentions(t, err, "sudo is not installed")
	})
}

// TestSSHSudoCancelStopsTheCommand: a cancelled command of a sudo user
// stops on the node, not only in haadm: SIGKILL would kill sudo alone and
// leave the command running (here: writing a file a second later).
func TestSSHSudoCancelStopsTheCommand(t *testing.T) {
	isolateEnv(t)
	testUser(t, sudoTestUser)
	sudoers(t, "haadm-test-sudo", sudoTestUser+" ALL=(ALL) NOPASSWD: ALL\n")
	s := startSSHD(t)
	cfg, _ := s.clientConfig(t, "", s.knownHostsLine("ed25519"))
	h := dialTest(t, s, SSHOptions{ConfigFile: cfg, User: sudoTestUser})
	late := filepath.Join(t.TempDir(), "written-after-cancel")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := h.Run(ctx, "sleep 2; touch "+late); err == nil {
		t.Fatal("a cancelled command succeeded")
	}
	time.Sleep(3 * time.Second)
	if _, err := os.Stat(late); err == nil {
		t.Error("the command went on running on the node after it was cancelled")
	}
}
