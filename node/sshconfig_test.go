package node

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kevinburke/ssh_config"
)

func TestResolveSSHSettings(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	cfg, err := ssh_config.Decode(strings.NewReader(`
Host emei
  HostName 10.0.0.%h
  User admin
  Port 2222
  IdentityFile ~/.ssh/emei_key
  IdentityFile /keys/%r@%h
  IdentitiesOnly yes
  UserKnownHostsFile ~/kh1 /abs/kh2
  StrictHostKeyChecking accept-new
  ConnectTimeout 5

Host jumped
  ProxyJump bastion

Host *
  User fallback
  ServerAliveInterval 7
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := resolveSSHSettings(cfg, "emei", SSHOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := &sshSettings{
		alias: "emei", hostName: "10.0.0.emei", port: "2222", user: "admin",
		identityFiles:      []string{filepath.Join(home, ".ssh/emei_key"), "/keys/admin@10.0.0.emei"},
		identitiesOnly:     true,
		explicitIdentities: true,
		knownHostsFiles:    []string{filepath.Join(home, "kh1"), "/abs/kh2", "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"},
		strictHostKey:      "accept-new",
		connectTimeout:     5 * time.Second,
		aliveInterval:      7 * time.Second,
		aliveCountMax:      3,
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}

	s, err = resolveSSHSettings(cfg, "other", SSHOptions{User: "override"})
	if err != nil {
		t.Fatal(err)
	}
	if s.hostName != "other" || s.port != "22" || s.user != "override" || s.explicitIdentities ||
		s.knownHostsFiles[0] != filepath.Join(home, ".ssh/known_hosts") || s.strictHostKey != "ask" {
		t.Errorf("defaults: %+v", s)
	}
	if s, _ = resolveSSHSettings(&ssh_config.Config{}, "bare", SSHOptions{}); s.user == "" || s.addr() != "bare:22" {
		t.Errorf("no config: %+v", s)
	}

	if _, err := resolveSSHSettings(cfg, "jumped", SSHOptions{}); err == nil || !strings.Contains(err.Error(), "ProxyJump") {
		t.Errorf("ProxyJump: %v", err)
	}
}

func TestLoadSSHConfig(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	if cfg, err := loadSSHConfig(""); err != nil || cfg == nil {
		t.Fatalf("no ~/.ssh/config: %v", err)
	}
	if _, err := loadSSHConfig(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("an explicit missing config must fail")
	}
	f := filepath.Join(os.Getenv("HOME"), ".ssh", "config")
	os.MkdirAll(filepath.Dir(f), 0o700)
	os.WriteFile(f, []byte("Host x\n  Port 2200\n"), 0o600)
	cfg, err := loadSSHConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := cfg.Get("x", "Port"); v != "2200" {
		t.Errorf("~/.ssh/config not read: %q", v)
	}
}
