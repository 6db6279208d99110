package node

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// sshSettings is what haadm takes from ssh_config for one node, resolved the
// way OpenSSH does: the first value found wins, per-host blocks before
// "Host *".
type sshSettings struct {
	alias          string // the node name as given, %n
	hostName       string
	port           string
	user           string
	identityFiles  []string
	identitiesOnly bool
	// explicitIdentities is false when identityFiles are OpenSSH's default
	// candidates, which are skipped silently when absent.
	explicitIdentities bool
	knownHostsFiles    []string // user files first: new keys are added to [0]
	strictHostKey      string   // yes, no, accept-new, ask, off
	hostKeyAlias       string
	connectTimeout     time.Duration
	aliveInterval      time.Duration
	aliveCountMax      int
}

// addr is host:port as dialled.
func (s *sshSettings) addr() string { return net.JoinHostPort(s.hostName, s.port) }

// knownHostsAddr is the name known_hosts is searched for: HostKeyAlias
// replaces host and port, as in OpenSSH.
func (s *sshSettings) knownHostsAddr() string {
	if s.hostKeyAlias != "" {
		return net.JoinHostPort(s.hostKeyAlias, "22")
	}
	return s.addr()
}

// loadSSHConfig reads the ssh_config file like `ssh -F file`. Without a file
// it reads ~/.ssh/config when present; the system-wide /etc/ssh/ssh_config is
// not read (its distribution defaults are about interactive use).
func loadSSHConfig(file string) (*ssh_config.Config, error) {
	explicit := file != ""
	if !explicit {
		home, err := os.UserHomeDir()
		if err != nil {
			return &ssh_config.Config{}, nil
		}
		file = filepath.Join(home, ".ssh", "config")
	}
	f, err := os.Open(file)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return &ssh_config.Config{}, nil
		}
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", file, err)
	}
	return cfg, nil
}

func resolveSSHSettings(cfg *ssh_config.Config, alias string, opts SSHOptions) (*sshSettings, error) {
	get := func(key string) (string, error) {
		v, err := cfg.Get(alias, key)
		if err != nil {
			return "", fmt.Errorf("ssh config for %s: %s: %w", alias, key, err)
		}
		return strings.TrimSpace(v), nil
	}
	getAll := func(key string) ([]string, error) {
		v, err := cfg.GetAll(alias, key)
		if err != nil {
			return nil, fmt.Errorf("ssh config for %s: %s: %w", alias, key, err)
		}
		return v, nil
	}
	var firstErr error
	must := func(v string, err error) string {
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return v
	}

	home, _ := os.UserHomeDir()
	localUser := currentUserName()
	s := &sshSettings{alias: alias}

	for _, key := range []string{"ProxyJump", "ProxyCommand"} {
		if v := must(get(key)); v != "" && !strings.EqualFold(v, "none") {
			return nil, fmt.Errorf("ssh config for %s: %s is not supported by haadm; make the node directly reachable or use a VPN/port forward", alias, key)
		}
	}

	s.hostName = must(get("HostName"))
	if s.hostName == "" {
		s.hostName = alias
	}
	s.hostName = expandTokens(s.hostName, map[byte]string{'h': alias, 'n': alias})

	s.port = must(get("Port"))
	if s.port == "" {
		s.port = "22"
	}
	if p, err := strconv.Atoi(s.port); err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("ssh config for %s: invalid Port %q", alias, s.port)
	}

	s.user = opts.User
	if s.user == "" {
		s.user = must(get("User"))
	}
	if s.user == "" {
		s.user = localUser
	}
	if s.user == "" {
		return nil, fmt.Errorf("ssh config for %s: no User set and the local user name is unknown", alias)
	}

	tokens := map[byte]string{
		'd': home, 'u': localUser, 'h': s.hostName, 'n': alias, 'r': s.user, 'p': s.port,
	}
	expand := func(p string) string { return expandHome(expandTokens(p, tokens), home) }

	ids, err := getAll("IdentityFile")
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		for _, f := range strings.Fields(id) {
			if strings.EqualFold(f, "none") {
				continue
			}
			s.identityFiles = append(s.identityFiles, expand(f))
		}
	}
	s.explicitIdentities = len(s.identityFiles) > 0
	if !s.explicitIdentities && home != "" {
		for _, f := range []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk"} {
			s.identityFiles = append(s.identityFiles, filepath.Join(home, ".ssh", f))
		}
	}
	s.identitiesOnly = strings.EqualFold(must(get("IdentitiesOnly")), "yes")

	user := must(get("UserKnownHostsFile"))
	if user == "" {
		user = "~/.ssh/known_hosts ~/.ssh/known_hosts2"
	}
	global := must(get("GlobalKnownHostsFile"))
	if global == "" {
		global = "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"
	}
	for _, f := range append(strings.Fields(user), strings.Fields(global)...) {
		if strings.EqualFold(f, "none") {
			continue
		}
		s.knownHostsFiles = append(s.knownHostsFiles, expand(f))
	}

	s.strictHostKey = strings.ToLower(must(get("StrictHostKeyChecking")))
	if s.strictHostKey == "" {
		s.strictHostKey = "ask"
	}
	s.hostKeyAlias = must(get("HostKeyAlias"))

	if v := must(get("ConnectTimeout")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("ssh config for %s: invalid ConnectTimeout %q", alias, v)
		}
		s.connectTimeout = time.Duration(n) * time.Second
	}
	// haadm holds connections open across long phases (image pulls, etcd
	// member joins); keepalives detect a dead node instead of hanging, so
	// they are on by default unlike in OpenSSH.
	s.aliveInterval = 30 * time.Second
	if v := must(get("ServerAliveInterval")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("ssh config for %s: invalid ServerAliveInterval %q", alias, v)
		}
		s.aliveInterval = time.Duration(n) * time.Second
	}
	s.aliveCountMax = 3
	if v := must(get("ServerAliveCountMax")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("ssh config for %s: invalid ServerAliveCountMax %q", alias, v)
		}
		s.aliveCountMax = n
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return s, nil
}

func currentUserName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// expandTokens replaces ssh_config percent tokens (%h, %u, ...); unknown
// tokens are left as they are.
func expandTokens(s string, tokens map[byte]string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
		} else if v, ok := tokens[s[i]]; ok {
			b.WriteString(v)
		} else {
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func expandHome(p, home string) string {
	if home == "" {
		return p
	}
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}
