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
	s, err := resolveSSHSettings(cfg, "emei", sshOverrides{})
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

	s, err = resolveSSHSettings(cfg, "other", sshOverrides{user: "override"})
	if err != nil {
		t.Fatal(err)
	}
	if s.hostName != "other" || s.port != "22" || s.user != "override" || s.explicitIdentities ||
		s.knownHostsFiles[0] != filepath.Join(home, ".ssh/known_hosts") || s.strictHostKey != "ask" {
		t.Errorf("defaults: %+v", s)
	}
	if s, _ = resolveSSHSettings(&ssh_config.Config{}, "bare", sshOverrides{}); s.user == "" || s.addr() != "bare:22" {
		t.Errorf("no config: %+v", s)
	}

	if s, err := resolveSSHSettings(cfg, "jumped", sshOverrides{}); err != nil || s.proxyJump != "bastion" {
		t.Errorf("ProxyJump: %+v, %v", s, err)
	}
	if s, err := resolveSSHSettings(cfg, "jumped", sshOverrides{proxyJump: "none"}); err != nil || s.proxyJump != "" {
		t.Errorf("ProxyJump none: %+v, %v", s, err)
	}
}

// Per-node and global overrides win over the ssh_config, the per-node ones
// over the global ones.
func TestNodeOverrides(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	cfg, err := ssh_config.Decode(strings.NewReader(`
Host emei
  HostName 10.0.0.1
  Port 2222
  User admin
  IdentityFile ~/.ssh/emei_key
  ProxyJump gate
`))
	if err != nil {
		t.Fatal(err)
	}
	opts := SSHOptions{User: "ops", IdentityFile: "~/my key", ProxyJump: "other",
		Nodes: map[string]SSHNodeOptions{"emei": {HostName: "192.168.1.5", Port: 2200, User: "deploy", ProxyJump: "none"}}}
	s, err := resolveSSHSettings(cfg, "emei", nodeOverrides("emei", opts))
	if err != nil {
		t.Fatal(err)
	}
	if s.addr() != "192.168.1.5:2200" || s.user != "deploy" || s.proxyJump != "" ||
		!reflect.DeepEqual(s.identityFiles, []string{filepath.Join(home, "my key")}) || !s.explicitIdentities {
		t.Errorf("per-node overrides: %+v", s)
	}
	s, err = resolveSSHSettings(cfg, "wudang", nodeOverrides("wudang", opts))
	if err != nil {
		t.Fatal(err)
	}
	if s.addr() != "wudang:22" || s.user != "ops" || s.proxyJump != "other" {
		t.Errorf("global overrides: %+v", s)
	}
	s, err = resolveSSHSettings(cfg, "emei", nodeOverrides("emei", SSHOptions{}))
	if err != nil || s.addr() != "10.0.0.1:2222" || s.user != "admin" || s.proxyJump != "gate" {
		t.Errorf("no overrides: %+v, %v", s, err)
	}
}

func TestProxyCommandRefused(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	cfg, _ := ssh_config.Decode(strings.NewReader("Host emei\n  ProxyCommand nc -X 5 %h %p\n"))
	_, err := resolveSSHSettings(cfg, "emei", sshOverrides{})
	if err == nil || !strings.Contains(err.Error(), "ProxyCommand is not supported") || !strings.Contains(err.Error(), "ProxyJump") {
		t.Errorf("ProxyCommand: %v", err)
	}
	// An explicit jump list replaces the config's proxy, as ssh -J does.
	if s, err := resolveSSHSettings(cfg, "emei", sshOverrides{proxyJump: "gate"}); err != nil || s.proxyJump != "gate" {
		t.Errorf("ProxyCommand with --ssh-jump: %+v, %v", s, err)
	}
}

func TestParseProxyJump(t *testing.T) {
	got, err := parseProxyJump("gate, ops@10.0.0.2:2222,ssh://u@[fd00::1]:23,[fd00::2],a@b@c")
	want := []jumpSpec{{host: "gate"}, {user: "ops", host: "10.0.0.2", port: 2222}, {user: "u", host: "fd00::1", port: 23}, {host: "fd00::2"}, {user: "a@b", host: "c"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, %v\nwant %+v", got, err, want)
	}
	for _, bad := range []string{"", "gate,", "@gate", "gate:0", "gate:x", "a b"} {
		if _, err := parseProxyJump(bad); err == nil {
			t.Errorf("parseProxyJump(%q) accepted", bad)
		}
	}
}

func TestResolveJumps(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	cfg, err := ssh_config.Decode(strings.NewReader(`
Host emei
  ProxyJump inner,ops@edge:2022
Host inner
  HostName 10.1.0.1
  User jumper
  ProxyJump outer
Host edge
  HostName 10.1.0.2
  ProxyJump ignored
Host outer
  HostName 203.0.113.1
Host loop
  ProxyJump loop
`))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := resolveSSHSettings(cfg, "emei", sshOverrides{})
	hops, err := resolveJumps(cfg, s, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hops {
		got = append(got, h.alias+"="+h.user+"@"+h.addr())
	}
	user := currentUserName()
	want := []string{"outer=" + user + "@203.0.113.1:22", "inner=jumper@10.1.0.1:22", "edge=ops@10.1.0.2:2022"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hops %q, want %q", got, want)
	}
	s, _ = resolveSSHSettings(cfg, "loop", sshOverrides{})
	if _, err := resolveJumps(cfg, s, 0); err == nil || !strings.Contains(err.Error(), "hops") {
		t.Errorf("ProxyJump loop: %v", err)
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
