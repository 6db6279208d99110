package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHOptions configure DialSSH.
type SSHOptions struct {
	// ConfigFile is an OpenSSH ssh_config file, used like `ssh -F file`.
	// Empty means ~/.ssh/config when it exists, else OpenSSH defaults.
	ConfigFile string
	// User overrides the ssh_config User.
	User string
	// IdentityFile, when set, is the private key to offer (after the
	// agent's), in place of the ssh_config IdentityFile.
	IdentityFile string
	// ProxyJump overrides the ssh_config ProxyJump: bastions to hop
	// through, "[user@]host[:port]" comma separated, as `ssh -J`.
	ProxyJump string
	// Nodes override the above, and the address, for one node each.
	Nodes map[string]SSHNodeOptions
	// Timeout bounds connecting, the handshake and authentication. Zero
	// means the ssh_config ConnectTimeout, else 15 seconds.
	Timeout time.Duration
	// InsecureIgnoreHostKey accepts any host key. It exists for throwaway
	// labs only and must be an explicit user choice: haadm moves the
	// cluster's CA keys over these connections.
	InsecureIgnoreHostKey bool
	// Logf receives one WARNING line for every host key, of a node or a
	// bastion, that was accepted without known_hosts vouching for it
	// (StrictHostKeyChecking no or accept-new, InsecureIgnoreHostKey).
	// Nil means os.Stderr: such a warning must never go unseen.
	Logf func(format string, args ...any)
}

// SSHNodeOptions are one node's overrides of SSHOptions and its ssh_config;
// empty fields leave them alone.
type SSHNodeOptions struct {
	HostName     string
	Port         int
	User         string
	IdentityFile string
	ProxyJump    string
}

const defaultSSHTimeout = 15 * time.Second

const maxSessions = 8

// remoteNotFoundExit is the exit status our scripts use for "no such file";
// it is distinct from the statuses cat, stat and sudo use for failures.
const remoteNotFoundExit = 44

// SSHHost is a Host reached over SSH.
//
// Every command runs in its own session as `sh -c 'CMD'`, so it has POSIX sh
// semantics whatever the login shell is. When the SSH user is not root the
// command runs as `sudo -n sh -c 'CMD'`: haadm needs root on every node and
// cannot answer a password prompt, so the user needs passwordless sudo, and
// sudo's own error ("a password is required") ends up in the CmdError.
type SSHHost struct {
	name   string
	user   string
	addr   string
	client *ssh.Client
	// jumps are the bastions' clients, first hop first; they carry client.
	jumps []*ssh.Client
	// sessions bounds concurrent sessions below sshd's MaxSessions
	// (default 10), beyond which sshd refuses new ones.
	sessions chan struct{}

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ Host = (*SSHHost)(nil)

// DialSSH connects to the node called name in the ssh_config, through the
// bastions of its ProxyJump if any, verifies every host key against
// known_hosts and authenticates each hop with the ssh-agent (SSH_AUTH_SOCK)
// and its IdentityFile keys. opts.Nodes[name] and the other overrides in
// opts win over the ssh_config. For a user other than root it checks that
// passwordless sudo works, so a node that cannot be driven fails here,
// before anything was changed anywhere.
//
// The timeout bounds the whole chain, bastions included.
func DialSSH(ctx context.Context, name string, opts SSHOptions) (*SSHHost, error) {
	cfg, err := loadSSHConfig(opts.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	s, err := resolveSSHSettings(cfg, name, nodeOverrides(name, opts))
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	hops, err := resolveJumps(cfg, s, 0)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = s.connectTimeout
	}
	if timeout <= 0 {
		timeout = defaultSSHTimeout
	}
	if opts.Logf == nil {
		// Unverified host keys must be seen whoever calls us.
		opts.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var jumps []*ssh.Client
	var via *sshEndpoint
	for _, hop := range hops {
		e := &sshEndpoint{node: name, bastion: hop.alias, s: hop}
		c, err := e.connect(ctx, start, via, opts)
		if err != nil {
			closeClients(jumps)
			return nil, err
		}
		e.client = c
		jumps = append(jumps, c)
		via = e
	}
	e := &sshEndpoint{node: name, s: s}
	c, err := e.connect(ctx, start, via, opts)
	if err != nil {
		closeClients(jumps)
		return nil, err
	}

	h := &SSHHost{
		name:     name,
		user:     s.user,
		addr:     s.addr(),
		client:   c,
		jumps:    jumps,
		sessions: make(chan struct{}, maxSessions),
		done:     make(chan struct{}),
	}
	if h.user != "root" {
		if err := h.checkSudo(ctx); err != nil {
			h.Close()
			return nil, err
		}
	}
	if s.aliveInterval > 0 {
		go h.keepalive(s.aliveInterval, s.aliveCountMax)
	}
	return h, nil
}

// sshEndpoint is one SSH server of a chain: a bastion or the node itself.
type sshEndpoint struct {
	node    string
	bastion string // the bastion's ssh_config name; "" for the node
	s       *sshSettings
	client  *ssh.Client // once connected
}

// who starts every error and warning about the endpoint.
func (e *sshEndpoint) who() string {
	if e.bastion == "" {
		return "node " + e.node
	}
	return fmt.Sprintf("node %s: via bastion %s (%s)", e.node, e.bastion, e.s.addr())
}

// connect dials e, directly or through via's client, and authenticates.
// ctx bounds it all: the handshake has no context of its own, so ctx's end
// closes the connection under it.
func (e *sshEndpoint) connect(ctx context.Context, start time.Time, via *sshEndpoint, opts SSHOptions) (*ssh.Client, error) {
	s := e.s
	checker, err := newHostKeyChecker(e, opts.InsecureIgnoreHostKey, opts.Logf)
	if err != nil {
		return nil, err
	}
	conf := &ssh.ClientConfig{
		User:              s.user,
		HostKeyCallback:   checker.check,
		HostKeyAlgorithms: checker.knownAlgorithms(),
	}
	auth := newSSHAuth(s)
	defer auth.close()
	conf.Auth = auth.methods()
	if len(conf.Auth) == 0 {
		return nil, auth.explain(fmt.Errorf("%s: no usable SSH key for %s@%s: set IdentityFile in the ssh config or load a key into ssh-agent",
			e.who(), s.user, s.addr()))
	}

	var conn net.Conn
	if via == nil {
		dialer := net.Dialer{KeepAlive: 30 * time.Second}
		conn, err = dialer.DialContext(ctx, "tcp", s.addr())
		if err != nil {
			return nil, fmt.Errorf("%s: connecting to %s: %w", e.who(), s.addr(), dialError(ctx, err, start))
		}
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		}
	} else {
		// The bastion opens the TCP connection (direct-tcpip), so the
		// address is resolved and reached from its side.
		conn, err = via.client.DialContext(ctx, "tcp", s.addr())
		if err != nil {
			return nil, fmt.Errorf("%s: connecting to %s through bastion %s: %w", e.who(), s.addr(), via.bastion, dialError(ctx, err, start))
		}
	}
	stopWatch := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, s.addr(), conf)
	if !stopWatch() {
		if err == nil {
			c.Close()
		}
		return nil, fmt.Errorf("%s: SSH handshake with %s: %w", e.who(), s.addr(), dialError(ctx, ctx.Err(), start))
	}
	if err != nil {
		conn.Close()
		if hkErr := checker.failure(); hkErr != nil {
			return nil, hkErr
		}
		err = fmt.Errorf("%s: SSH handshake with %s as %s: %w", e.who(), s.addr(), s.user, err)
		if strings.Contains(err.Error(), "unable to authenticate") {
			err = auth.explain(err)
		}
		return nil, err
	}
	if via == nil {
		conn.SetDeadline(time.Time{})
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// closeClients closes a chain from its far end, so each bastion still
// carries the close of the connection behind it.
func closeClients(cs []*ssh.Client) error {
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		if err := cs[i].Close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkSudo runs `sudo -n true` once so that a user who cannot become root
// without a prompt is refused at dial time, with what to change on the
// node, instead of failing half way through a phase.
func (h *SSHHost) checkSudo(ctx context.Context) error {
	const probe = "sudo -n true"
	_, err := h.session(ctx, probe, probe, nil)
	if err == nil {
		return nil
	}
	var ce *CmdError
	if !errors.As(err, &ce) || ce.Err != nil {
		return fmt.Errorf("node %s: checking passwordless sudo for %s: %w", h.name, h.user, err)
	}
	said := strings.TrimSpace(string(ce.Stderr))
	entry := fmt.Sprintf("%s ALL=(ALL) NOPASSWD: ALL", h.user)
	var what string
	switch {
	case ce.ExitCode == 127 || strings.Contains(said, "not found"):
		what = fmt.Sprintf("sudo is not installed (%q): install it on the node and give %s passwordless sudo "+
			"(echo '%s' > /etc/sudoers.d/haadm), or connect as root", said, h.user, entry)
	case strings.Contains(said, "password is required"):
		what = fmt.Sprintf("sudo wants a password (%q), which haadm cannot give: add `%s` to /etc/sudoers.d/haadm on the node "+
			"(visudo -f /etc/sudoers.d/haadm), or connect as root", said, entry)
	case strings.Contains(said, "tty") || strings.Contains(said, "terminal"):
		what = fmt.Sprintf("sudo requires a terminal (%q; Defaults requiretty): add `Defaults:%s !requiretty` to /etc/sudoers.d/haadm "+
			"on the node (visudo -f /etc/sudoers.d/haadm), or connect as root", said, h.user)
	default:
		what = fmt.Sprintf("`%s` failed: %v", probe, err)
	}
	return fmt.Errorf("node %s: user %s is not root and haadm runs every command through sudo: %s; nothing was changed", h.name, h.user, what)
}

// dialError reports the time actually waited: the deadline may be the
// caller's rather than ours.
func dialError(ctx context.Context, err error, start time.Time) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %v: %w", time.Since(start).Round(100*time.Millisecond), context.DeadlineExceeded)
	}
	return err
}

// keepalive closes the client when the node stops answering, so commands
// and dials fail instead of hanging on a dead TCP connection.
func (h *SSHHost) keepalive(interval time.Duration, maxMissed int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-h.done:
			return
		case <-t.C:
		}
		replied := make(chan error, 1)
		go func() {
			_, _, err := h.client.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		select {
		case <-h.done:
			return
		case err := <-replied:
			if err != nil {
				missed = maxMissed
			} else {
				missed = 0
			}
		case <-time.After(interval):
			missed++
		}
		if missed >= maxMissed {
			h.client.Close()
			return
		}
	}
}

// Name is the node name as given to DialSSH.
func (h *SSHHost) Name() string { return h.name }

// Addr is the host:port connected to.
func (h *SSHHost) Addr() string { return h.addr }

// User is the SSH login user.
func (h *SSHHost) User() string { return h.user }

func (h *SSHHost) remoteCommand(cmd string) string {
	c := "sh -c " + ShellQuote(cmd)
	if h.user != "root" {
		c = "sudo -n " + c
	}
	return c
}

// cancelGrace is how long a cancelled command gets to report its end;
// termGrace how long it has to stop on SIGTERM before SIGKILL.
const (
	cancelGrace = time.Second
	termGrace   = 300 * time.Millisecond
)

// exec runs cmd in a new session. Cancelling ctx sends SIGTERM, then
// SIGKILL, and closes the session, and exec returns within cancelGrace whatever the node does:
// sshd ignores signal requests on root logins (it only honours them with
// privilege separation) and does not kill a command when its session
// closes, so a hung command may keep running on the node, but it cannot
// hang haadm.
func (h *SSHHost) exec(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	return h.session(ctx, cmd, h.remoteCommand(cmd), stdin)
}

// session runs remote, reported as cmd in errors.
func (h *SSHHost) session(ctx context.Context, cmd, remote string, stdin io.Reader) ([]byte, error) {
	fail := func(stdout, stderr []byte, exit int, err error) *CmdError {
		return &CmdError{Node: h.name, Cmd: cmd, ExitCode: exit, Stdout: stdout, Stderr: stderr, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(nil, nil, -1, err)
	}
	select {
	case h.sessions <- struct{}{}:
	case <-ctx.Done():
		return nil, fail(nil, nil, -1, ctx.Err())
	}
	sess, err := h.client.NewSession()
	if err != nil {
		<-h.sessions
		return nil, fail(nil, nil, -1, fmt.Errorf("opening SSH session: %w", err))
	}
	var stdout, stderr bytes.Buffer
	sess.Stdout = &stdout
	sess.Stderr = &stderr
	sess.Stdin = stdin
	ran := make(chan error, 1)
	go func() {
		err := sess.Run(remote)
		sess.Close()
		// The slot is freed when the session really ends, which after a
		// cancellation may be later than exec returns.
		<-h.sessions
		ran <- err
	}()
	select {
	case err = <-ran:
	case <-ctx.Done():
		// TERM first: for a sudo user sshd delivers it to sudo, which
		// passes it on to the command (haadm's scripts trap it and stop
		// cleanly); KILL would kill sudo alone and leave the command
		// running, writing files under whatever runs next.
		sess.Signal(ssh.SIGTERM)
		select {
		case err = <-ran:
		case <-time.After(termGrace):
			sess.Signal(ssh.SIGKILL)
			sess.Close()
			select {
			case err = <-ran:
			case <-time.After(cancelGrace):
				// The buffers still belong to the Run goroutine, so the
				// error carries no output.
				return nil, fail(nil, nil, -1, ctx.Err())
			}
		}
	}
	if err == nil {
		return stdout.Bytes(), nil
	}
	var exitErr *ssh.ExitError
	switch {
	case ctx.Err() != nil:
		return nil, fail(stdout.Bytes(), stderr.Bytes(), -1, ctx.Err())
	case errors.As(err, &exitErr) && exitErr.Signal() != "":
		return nil, fail(stdout.Bytes(), stderr.Bytes(), -1, fmt.Errorf("killed by signal %s", exitErr.Signal()))
	case errors.As(err, &exitErr):
		return nil, fail(stdout.Bytes(), stderr.Bytes(), exitErr.ExitStatus(), nil)
	default:
		return nil, fail(stdout.Bytes(), stderr.Bytes(), -1, err)
	}
}

// Output runs cmd and returns its stdout.
func (h *SSHHost) Output(ctx context.Context, cmd string) (string, error) {
	out, err := h.exec(ctx, cmd, nil)
	return string(out), err
}

// Run runs cmd and returns its stdout; over SSH it is the same as Output.
func (h *SSHHost) Run(ctx context.Context, cmd string) (string, error) {
	return h.Output(ctx, cmd)
}

// ReadFile reads p with cat on the node.
func (h *SSHHost) ReadFile(ctx context.Context, p string) ([]byte, error) {
	q := ShellQuote(p)
	out, err := h.exec(ctx, fmt.Sprintf("test -e %s || exit %d; exec cat -- %s", q, remoteNotFoundExit, q), nil)
	return out, h.notExist(err, "read", p)
}

func (h *SSHHost) notExist(err error, op, p string) error {
	var ce *CmdError
	if errors.As(err, &ce) && ce.Err == nil && ce.ExitCode == remoteNotFoundExit {
		return fmt.Errorf("node %s: %w", h.name, &fs.PathError{Op: op, Path: p, Err: fs.ErrNotExist})
	}
	return err
}

// WriteFile streams data into a temporary file next to p and renames it
// over p. The script checks the received size before the rename: if the
// connection drops mid-write, cat sees a short stdin and exits 0, and
// without the check a truncated file would replace a good one.
func (h *SSHHost) WriteFile(ctx context.Context, p string, data []byte, mode fs.FileMode) error {
	_, err := h.exec(ctx, writeScript(p, len(data), mode, randomSuffix()), bytes.NewReader(data))
	return err
}

// Upload streams s.Data to the node's stdin; the script checks size and
// sha256 with sha256sum before the rename, so a cut connection or a
// corrupted stream never replaces the target.
func (h *SSHHost) Upload(ctx context.Context, s Stream) error {
	_, err := h.exec(ctx, uploadScript(s, randomSuffix()), s.Data)
	return err
}

func uploadScript(s Stream, suffix string) string {
	dir, base := path.Split(s.Path)
	if dir == "" {
		dir = "./"
	}
	tmp := dir + "." + base + ".haadm-tmp-" + suffix
	return strings.Join([]string{
		"set -e",
		"f=" + ShellQuote(s.Path) + "; d=" + ShellQuote(dir) + "; t=" + ShellQuote(tmp),
		`mkdir -p -- "$d"`,
		"umask 077",
		`trap 'rm -f -- "$t"' EXIT`,
		"trap 'exit 1' HUP INT TERM PIPE",
		`cat > "$t"`,
		`n=$(($(wc -c < "$t")))`,
		fmt.Sprintf(`if [ "$n" -ne %d ]; then echo "$f: short write: received $n of %d bytes" >&2; exit 1; fi`, s.Size, s.Size),
		`sum=$(sha256sum < "$t"); sum=${sum%% *}`,
		fmt.Sprintf(`if [ "$sum" != %s ]; then echo "$f: sha256 $sum, want %s: corrupted in transit" >&2; exit 1; fi`, ShellQuote(s.SHA256), s.SHA256),
		fmt.Sprintf(`chmod %04o -- "$t"`, s.Mode.Perm()),
		`sync -- "$t" 2>/dev/null || sync`,
		`mv -f -- "$t" "$f"`,
		"trap - EXIT",
	}, "\n")
}

func writeScript(p string, size int, mode fs.FileMode, suffix string) string {
	dir, base := path.Split(p)
	if dir == "" {
		dir = "./"
	}
	tmp := dir + "." + base + ".haadm-tmp-" + suffix
	return strings.Join([]string{
		"set -e",
		"f=" + ShellQuote(p) + "; d=" + ShellQuote(dir) + "; t=" + ShellQuote(tmp),
		`mkdir -p -- "$d"`,
		"umask 077",
		`trap 'rm -f -- "$t"' EXIT`,
		"trap 'exit 1' HUP INT TERM PIPE",
		`cat > "$t"`,
		`n=$(($(wc -c < "$t")))`,
		fmt.Sprintf(`if [ "$n" -ne %d ]; then echo "short write: received $n of %d bytes" >&2; exit 1; fi`, size, size),
		fmt.Sprintf(`chmod %04o -- "$t"`, mode.Perm()),
		`sync -- "$t" 2>/dev/null || sync`,
		`mv -f -- "$t" "$f"`,
		"trap - EXIT",
	}, "\n")
}

// ReadFiles reads every path in one session. The script frames each file
// (see readFilesScript), so binary content and a missing final newline come
// through as they are, and a stream cut short or garbled fails to parse
// instead of yielding a wrong file.
func (h *SSHHost) ReadFiles(ctx context.Context, paths []string) (map[string]File, error) {
	paths = uniquePaths(paths)
	if len(paths) == 0 {
		return map[string]File{}, nil
	}
	script := readFilesScript(paths)
	out, err := h.exec(ctx, script, nil)
	if changedWhileRead(err) {
		// A file replaced (renamed over, as haadm and kubeadm write)
		// while tar read it: the next read finds the new one whole.
		out, err = h.exec(ctx, script, nil)
	}
	if err != nil {
		return nil, h.readFilesError(err, paths)
	}
	files, _, err := parseReadFiles(out, paths)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", h.name, err)
	}
	return files, nil
}

// changedWhileRead: GNU tar read a file that changed under it, and says so
// with exit status 1 (its other failures exit 2).
func changedWhileRead(err error) bool {
	var ce *CmdError
	return errors.As(err, &ce) && ce.Err == nil && ce.ExitCode == 1 && bytes.Contains(ce.Stderr, []byte("file changed as we read it"))
}

// readFilesError drops stdout from the error: it is file content, private
// keys among it, and errors end up in terminals and bug reports. When the
// script stopped by itself, the error names the path it stopped at.
func (h *SSHHost) readFilesError(err error, paths []string) error {
	var ce *CmdError
	if !errors.As(err, &ce) {
		return err
	}
	c := *ce
	c.Stdout = nil
	if c.Err != nil || c.ExitCode < 0 {
		return &c
	}
	if _, done, _ := parseReadFiles(ce.Stdout, paths); done < len(paths) {
		return fmt.Errorf("node %s: reading %s: %w", h.name, paths[done], &c)
	}
	return &c
}

func uniquePaths(paths []string) []string {
	seen := make(map[string]bool, len(paths))
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// WriteFiles writes the batch in one session with the files' bytes one after
// the other on stdin: the script itself travels as a single exec argument,
// which the kernel limits to 128 KiB, less than a handful of manifests and
// certificates. See writeFilesScript for how a failure leaves the targets
// alone.
func (h *SSHHost) WriteFiles(ctx context.Context, files []File) error {
	if len(files) == 0 {
		return nil
	}
	if err := checkBatch(files); err != nil {
		return fmt.Errorf("node %s: %w", h.name, err)
	}
	var data []io.Reader
	for _, f := range files {
		if !f.Dir {
			data = append(data, bytes.NewReader(f.Data))
		}
	}
	_, err := h.exec(ctx, writeFilesScript(files, randomSuffix()), io.MultiReader(data...))
	return err
}

// checkBatch rejects what the write scripts would misinterpret.
func checkBatch(files []File) error {
	for _, f := range files {
		switch base := path.Base(f.Path); {
		case f.Path == "":
			return errors.New("writing files: empty path")
		case f.UID < 0 || f.GID < 0:
			return fmt.Errorf("writing %s: invalid owner %s", f.Path, f.Owner())
		case f.Dir && len(f.Data) > 0:
			return fmt.Errorf("writing %s: a directory entry with %d bytes of data", f.Path, len(f.Data))
		case !f.Dir && (strings.HasSuffix(f.Path, "/") || base == "." || base == ".."):
			return fmt.Errorf("writing %s: not a file name", f.Path)
		}
	}
	return nil
}

// writeFilesScript stages every file as a temporary file next to its
// target, reading exactly its size from stdin (GNU head -c reads no more
// than it writes, so the next file's bytes stay on stdin), checks the size
// (a dropped connection looks like a short stdin, not an error), sets owner
// and mode and syncs; only then does it rename them all into place. Until
// the renames start, any failure removes the temporary files and leaves
// every target as it was. The renames themselves are not one atomic step,
// but each is a rename within a directory, which fails only for reasons
// (a read-only or full filesystem) that the staging would have hit first.
//
// Directory entries are created and given their mode and owner during
// staging, since files of the batch may go into them; they are not undone
// when a later entry fails.
func writeFilesScript(files []File, suffix string) string {
	var dirs, stage, commit, temps, parents []string
	seen := map[string]bool{}
	for i, f := range files {
		if f.Dir {
			dirs = append(dirs, fmt.Sprintf("d %s %04o %s", ShellQuote(f.Path), f.Mode.Perm(), f.Owner()))
			continue
		}
		dir, base := path.Split(f.Path)
		if dir == "" {
			dir = "./"
		}
		if !seen[dir] {
			seen[dir] = true
			parents = append(parents, ShellQuote(dir))
		}
		tmp := ShellQuote(dir + "." + base + ".haadm-tmp-" + suffix + "-" + strconv.Itoa(i))
		temps = append(temps, tmp)
		stage = append(stage, fmt.Sprintf("s %d %s %04o %s %s", len(f.Data), tmp, f.Mode.Perm(), f.Owner(), ShellQuote(f.Path)))
		commit = append(commit, "mv -f -- "+tmp+" "+ShellQuote(f.Path))
	}
	lines := []string{
		"set -e",
		"trap 'exit 1' HUP INT TERM PIPE",
	}
	if len(temps) > 0 {
		lines = append(lines, "trap "+ShellQuote("rm -f -- "+strings.Join(temps, " "))+" EXIT")
	}
	lines = append(lines,
		`d() {`,
		`	mkdir -p -- "$1"`,
		`	chown "$3" -- "$1"`,
		`	chmod "$2" -- "$1"`,
		`}`,
		`s() {`,
		`	if [ -d "$5" ]; then printf '%s: is a directory\n' "$5" >&2; exit 1; fi`,
		`	head -c "$1" > "$2"`,
		`	n=$(($(wc -c < "$2")))`,
		`	if [ "$n" -ne "$1" ]; then printf 'short write of %s: received %s of %s bytes\n' "$5" "$n" "$1" >&2; exit 1; fi`,
		`	chown "$4" -- "$2"`,
		`	chmod "$3" -- "$2"`,
		`}`,
	)
	// Directories are made before the umask tightens, so that parents
	// created on the way keep the usual permissions.
	lines = append(lines, dirs...)
	if len(temps) == 0 {
		return strings.Join(lines, "\n")
	}
	lines = append(lines, "mkdir -p -- "+strings.Join(parents, " "), "umask 077")
	lines = append(lines, stage...)
	lines = append(lines, "sync -- "+strings.Join(temps, " ")+" 2>/dev/null || sync")
	lines = append(lines, commit...)
	lines = append(lines,
		"trap - EXIT",
		// Make the renames durable; a directory that cannot be synced is
		// not worth failing a batch that is already in place.
		"sync -- "+strings.Join(parents, " ")+" 2>/dev/null || :",
	)
	return strings.Join(lines, "\n")
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// DialContext opens a direct-tcpip channel: the connection starts on the
// node, so addr may be the node's loopback.
func (h *SSHHost) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := h.client.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("node %s: dialing %s %s through SSH: %w", h.name, network, addr, err)
	}
	return conn, nil
}

// Close closes the SSH connection and those to the bastions it went
// through; it is safe to call more than once.
func (h *SSHHost) Close() error {
	h.closeOnce.Do(func() {
		close(h.done)
		h.closeErr = closeClients(append(append([]*ssh.Client{}, h.jumps...), h.client))
	})
	return h.closeErr
}
