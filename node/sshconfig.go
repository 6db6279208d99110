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
	// proxyJump is the ProxyJump in effect: an override's, else the
	// ssh_config's; "" or "none" means a direct connection.
	proxyJump string
}

// sshOverrides replace what the ssh_config says for one host; empty fields
// leave it alone.
type sshOverrides struct {
	hostName     string
	port         int
	user         string
	identityFile string
	proxyJump    string
}

// nodeOverrides merges opts with opts.Nodes[name], the per-node values
// winning.
func nodeOverrides(name string, opts SSHOptions) sshOverrides {
	o := sshOverrides{user: opts.User, identityFile: opts.IdentityFile, proxyJump: opts.ProxyJump}
	n := opts.Nodes[name]
	if n.HostName != "" {
		o.hostName = n.HostName
	}
	if n.Port != 0 {
		o.port = n.Port
	}
	if n.User != "" {
		o.user = n.User
	}
	if n.IdentityFile != "" {
		o.identityFile = n.IdentityFile
	}
	if n.ProxyJump != "" {
		o.proxyJump = n.ProxyJump
	}
	return o
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

func resolveSSHSettings(cfg *ssh_config.Config, alias string, over sshOverrides) (*sshSettings, error) {
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

	// An explicit jump list replaces whatever proxy the ssh_config names,
	// as `ssh -J` does. ProxyCommand would mean running a program haadm
	// knows nothing about; ProxyJump covers bastions without it.
	s.proxyJump = over.proxyJump
	if s.proxyJump == "" {
		jump, command := must(get("ProxyJump")), must(get("ProxyCommand"))
		if command != "" && !strings.EqualFold(command, "none") && (jump == "" || strings.EqualFold(jump, "none")) {
			return nil, fmt.Errorf("ssh config for %s: ProxyCommand is not supported by haadm (it runs no local programs to connect); "+
				"use ProxyJump for bastions (ssh_config or --ssh-jump), or make the node directly reachable", alias)
		}
		s.proxyJump = jump
	}
	if strings.EqualFold(s.proxyJump, "none") {
		s.proxyJump = ""
	}

	s.hostName = over.hostName
	if s.hostName == "" {
		s.hostName = must(get("HostName"))
	}
	if s.hostName == "" {
		s.hostName = alias
	}
	s.hostName = expandTokens(s.hostName, map[byte]string{'h': alias, 'n': alias})

	s.port = must(get("Port"))
	if over.port != 0 {
		s.port = strconv.Itoa(over.port)
	}
	if s.port == "" {
		s.port = "22"
	}
	if p, err := strconv.Atoi(s.port); err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("ssh config for %s: invalid Port %q", alias, s.port)
	}

	s.user = over.user
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
	if over.identityFile != "" {
		// A path from a flag is one path, spaces and all.
		s.identityFiles = []string{expand(over.identityFile)}
	} else {
		for _, id := range ids {
			for _, f := range strings.Fields(id) {
				if strings.EqualFold(f, "none") {
					continue
				}
				s.identityFiles = append(s.identityFiles, expand(f))
			}
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

// jumpSpec is one bastion of a ProxyJump list.
type jumpSpec struct {
	user string
	host string // an ssh_config alias or an address
	port int    // 0: the ssh_config's
}

// parseProxyJump parses "[user@]host[:port]" entries, comma separated, as
// `ssh -J` and ssh_config's ProxyJump take them (ssh://user@host:port too).
func parseProxyJump(spec string) ([]jumpSpec, error) {
	var out []jumpSpec
	for _, e := range strings.Split(spec, ",") {
		e = strings.TrimSpace(e)
		orig := e
		e = strings.TrimPrefix(e, "ssh://")
		var j jumpSpec
		if i := strings.LastIndex(e, "@"); i >= 0 {
			j.user, e = e[:i], e[i+1:]
		}
		j.host = e
		if strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]") {
			j.host = e[1 : len(e)-1]
		} else if strings.HasPrefix(e, "[") || strings.Count(e, ":") == 1 {
			h, p, err := net.SplitHostPort(e)
			if err != nil {
				return nil, fmt.Errorf("ProxyJump %q: %q is not [user@]host[:port]", spec, orig)
			}
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return nil, fmt.Errorf("ProxyJump %q: invalid port in %q", spec, orig)
			}
			j.host, j.port = h, n
		}
		if j.host == "" || strings.ContainsAny(j.host, " \t/") || (j.user == "" && strings.Contains(orig, "@")) {
			return nil, fmt.Errorf("ProxyJump %q: %q is not [user@]host[:port]", spec, orig)
		}
		out = append(out, j)
	}
	return out, nil
}

// maxJumps bounds a chain, which a bastion whose own ProxyJump leads back
// to itself would otherwise make endless.
const maxJumps = 8

// resolveJumps turns s's ProxyJump into the bastions to dial, first hop
// first, each resolved through the ssh_config as OpenSSH does with
// `ssh -J`: the spec's user and port win over the bastion's own settings,
// and only the first bastion's own ProxyJump is followed (OpenSSH connects
// to the later ones through the earlier ones, whatever their config says).
// Node-wide options (--ssh-user, --ssh-key) are not applied to bastions,
// again as with `ssh -J`.
func resolveJumps(cfg *ssh_config.Config, s *sshSettings, depth int) ([]*sshSettings, error) {
	if s.proxyJump == "" {
		return nil, nil
	}
	specs, err := parseProxyJump(s.proxyJump)
	if err != nil {
		return nil, fmt.Errorf("ssh config for %s: %w", s.alias, err)
	}
	var hops []*sshSettings
	for i, j := range specs {
		over := sshOverrides{user: j.user, port: j.port}
		if i > 0 {
			over.proxyJump = "none"
		}
		h, err := resolveSSHSettings(cfg, j.host, over)
		if err != nil {
			return nil, err
		}
		if i == 0 && h.proxyJump != "" {
			if depth+len(specs) >= maxJumps {
				return nil, fmt.Errorf("ssh config for %s: more than %d ProxyJump hops (does a bastion's ProxyJump lead back to itself?)", s.alias, maxJumps)
			}
			before, err := resolveJumps(cfg, h, depth+len(specs))
			if err != nil {
				return nil, err
			}
			hops = append(hops, before...)
		}
		hops = append(hops, h)
	}
	if len(hops) > maxJumps {
		return nil, fmt.Errorf("ssh config for %s: more than %d ProxyJump hops", s.alias, maxJumps)
	}
	return hops, nil
}
