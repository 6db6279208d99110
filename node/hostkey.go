package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is a refused host key. Unknown keys and changed keys are both
// refused: haadm copies cluster CA keys to the nodes, so talking to an
// impostor would hand it the cluster.
type HostKeyError struct {
	Node string
	// Bastion is the ssh_config name of the jump host whose key this is;
	// empty for the node's own key.
	Bastion string
	// Addr is host:port as looked up in known_hosts.
	Addr        string
	KeyType     string
	Fingerprint string // ssh.FingerprintSHA256 of the key the server showed
	// Known lists the known_hosts entries for Addr ("file:line type
	// fingerprint"); empty for an unknown host.
	Known []string
	// Files are the known_hosts files that were searched.
	Files   []string
	Revoked bool
}

// Changed reports whether known_hosts had a different key for the host,
// which is either a reinstalled node or a man-in-the-middle.
func (e *HostKeyError) Changed() bool { return len(e.Known) > 0 && !e.Revoked }

func (e *HostKeyError) Error() string {
	host, port, _ := net.SplitHostPort(e.Addr)
	userFile := "~/.ssh/known_hosts"
	if len(e.Files) > 0 {
		userFile = e.Files[0]
	}
	who := "node " + e.Node
	if e.Bastion != "" {
		who += fmt.Sprintf(": via bastion %s (%s)", e.Bastion, e.Addr)
	}
	var b strings.Builder
	switch {
	case e.Revoked:
		fmt.Fprintf(&b, "%s: host key %s %s of %s is marked @revoked in known_hosts; refusing to connect",
			who, e.KeyType, e.Fingerprint, e.Addr)
	case e.Changed():
		fmt.Fprintf(&b, "%s: WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for %s! "+
			"Someone could be eavesdropping on you right now (man-in-the-middle attack), "+
			"or the host key was replaced (reinstall). Refusing to connect.\n"+
			"  server presented: %s %s\n  known_hosts has:\n", who, e.Addr, e.KeyType, e.Fingerprint)
		for _, k := range e.Known {
			fmt.Fprintf(&b, "    %s\n", k)
		}
		fmt.Fprintf(&b, "  If (and only if) you verified the new key on the node's console "+
			"(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), remove the old entry with "+
			"ssh-keygen -R %s -f %s and add the new one.", ShellQuote(knownhosts.Normalize(e.Addr)), ShellQuote(userFile))
	default:
		fmt.Fprintf(&b, "%s: host key of %s is unknown (not in %s)\n"+
			"  server presented: %s %s\n"+
			"  Check this fingerprint on the machine itself (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then add it:\n"+
			"    ssh-keyscan -p %s -t %s %s >> %s\n"+
			"  or use haadm's explicit insecure host key option (not recommended).",
			who, e.Addr, strings.Join(e.Files, ", "), e.KeyType, e.Fingerprint,
			port, keyscanType(e.KeyType), host, ShellQuote(userFile))
	}
	return b.String()
}

func keyscanType(keyType string) string {
	switch {
	case keyType == ssh.KeyAlgoED25519:
		return "ed25519"
	case strings.HasPrefix(keyType, "ecdsa-"):
		return "ecdsa"
	case keyType == ssh.KeyAlgoRSA:
		return "rsa"
	}
	return keyType
}

// hostKeyChecker verifies the server key against known_hosts and remembers
// the refusal, because the ssh package may not pass our error through
// unwrapped.
type hostKeyChecker struct {
	node     string
	bastion  string
	who      string
	insecure bool // accept what known_hosts does not vouch for, loudly
	settings *sshSettings
	callback ssh.HostKeyCallback
	files    []string // existing files that were loaded
	logf     func(format string, args ...any)

	mu  sync.Mutex
	err error
}

// newHostKeyChecker checks e's key. With insecure it still looks the key
// up, so the warning is only given for a key that really is not vouched for;
// known_hosts files it cannot read then do not stop it.
func newHostKeyChecker(e *sshEndpoint, insecure bool, logf func(string, ...any)) (*hostKeyChecker, error) {
	s := e.s
	c := &hostKeyChecker{node: e.node, bastion: e.bastion, who: e.who(), insecure: insecure, settings: s, logf: logf}
	var files []string
	for _, f := range s.knownHostsFiles {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		} else if !errors.Is(err, fs.ErrNotExist) && !insecure {
			return nil, fmt.Errorf("%s: known_hosts: %w", c.who, err)
		}
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		if !insecure {
			return nil, fmt.Errorf("%s: %w", c.who, err)
		}
		cb, _ = knownhosts.New()
	}
	c.callback, c.files = cb, files
	return c, nil
}

// warnUnverified is the one line every key accepted without known_hosts'
// word gets, whatever allowed it.
func (c *hostKeyChecker) warnUnverified(key ssh.PublicKey, why string) {
	c.logf("WARNING: %s: host key %s %s NOT verified against known_hosts (%s); haadm copies the cluster's CA keys over this connection",
		c.who, strings.ToUpper(keyscanType(key.Type())), ssh.FingerprintSHA256(key), why)
}

// knownAlgorithms returns the host key algorithms to offer so the server
// presents a key type we have in known_hosts. Without this a server with
// several host keys may present, say, ECDSA while we only know its ed25519
// key, and a correct host would be refused. Nil means no preference.
func (c *hostKeyChecker) knownAlgorithms() []string {
	// Asking with a throwaway key makes knownhosts list every known key for
	// the address in its KeyError.
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil
	}
	var keyErr *knownhosts.KeyError
	if !errors.As(c.callback(c.settings.knownHostsAddr(), probeAddr{}, probe), &keyErr) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range keyErr.Want {
		for _, a := range algorithmsForKeyType(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func algorithmsForKeyType(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

// probeAddr stands in for the remote address when probing known_hosts; the
// hostname argument takes precedence over it.
type probeAddr struct{}

func (probeAddr) Network() string { return "tcp" }
func (probeAddr) String() string  { return "0.0.0.0:0" }

func (c *hostKeyChecker) check(_ string, remote net.Addr, key ssh.PublicKey) error {
	addr := c.settings.knownHostsAddr()
	err := c.callback(addr, remote, key)
	if err == nil {
		return nil
	}
	if c.insecure {
		why := "insecure-ignore-host-key"
		var keyErr *knownhosts.KeyError
		var revErr *knownhosts.RevokedError
		switch {
		case errors.As(err, &revErr):
			why += "; the key is marked @revoked in known_hosts"
		case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
			why += "; known_hosts has a DIFFERENT key for " + addr
		}
		c.warnUnverified(key, why)
		return nil
	}
	hkErr := &HostKeyError{
		Node:        c.node,
		Bastion:     c.bastion,
		Addr:        addr,
		KeyType:     key.Type(),
		Fingerprint: ssh.FingerprintSHA256(key),
		Files:       c.settings.knownHostsFiles,
	}
	var keyErr *knownhosts.KeyError
	var revErr *knownhosts.RevokedError
	switch {
	case errors.As(err, &revErr):
		hkErr.Revoked = true
	case errors.As(err, &keyErr):
		for _, k := range keyErr.Want {
			hkErr.Known = append(hkErr.Known, fmt.Sprintf("%s:%d %s %s",
				k.Filename, k.Line, k.Key.Type(), ssh.FingerprintSHA256(k.Key)))
		}
		if len(keyErr.Want) == 0 && c.acceptNew() {
			if err := c.addKey(addr, key); err != nil {
				return c.remember(fmt.Errorf("%s: adding host key to known_hosts: %w", c.who, err))
			}
			return nil
		}
	default:
		return c.remember(fmt.Errorf("%s: checking host key: %w", c.who, err))
	}
	return c.remember(hkErr)
}

// acceptNew follows StrictHostKeyChecking: "accept-new" and "no" trust a
// host seen for the first time (and record it, as OpenSSH does). A changed
// key is refused whatever the setting.
func (c *hostKeyChecker) acceptNew() bool {
	switch c.settings.strictHostKey {
	case "accept-new", "no", "off":
		return true
	}
	return false
}

func (c *hostKeyChecker) addKey(addr string, key ssh.PublicKey) error {
	if len(c.settings.knownHostsFiles) == 0 {
		return errors.New("no UserKnownHostsFile to record it in")
	}
	file := c.settings.knownHostsFiles[0]
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// One write per line with O_APPEND, so parallel dials don't interleave.
	_, werr := f.WriteString(knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		c.warnUnverified(key, fmt.Sprintf("StrictHostKeyChecking %s: first seen, added to %s as %s", c.settings.strictHostKey, file, knownhosts.Normalize(addr)))
	}
	return werr
}

func (c *hostKeyChecker) remember(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	return err
}

func (c *hostKeyChecker) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
