package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// LocalHost is a Host for the machine haadm runs on. Commands run as
// `/bin/sh -c CMD` with haadm's own privileges (no sudo).
type LocalHost struct {
	name string
}

var _ Host = (*LocalHost)(nil)

// NewLocalHost returns the local machine under the given node name; an empty
// name means the machine's hostname.
func NewLocalHost(name string) *LocalHost {
	if name == "" {
		name, _ = os.Hostname()
	}
	return &LocalHost{name: name}
}

func (h *LocalHost) Name() string { return h.name }

// A command's children may keep its output pipes open after it is killed;
// this bounds how long we wait for them.
const localWaitDelay = 2 * time.Second

func (h *LocalHost) exec(ctx context.Context, cmd string) ([]byte, error) {
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	var stdout, stderr bytes.Buffer
	c.Stdout = &stdout
	c.Stderr = &stderr
	c.WaitDelay = localWaitDelay
	killProcessGroupOnCancel(c)
	err := c.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	ce := &CmdError{Node: h.name, Cmd: cmd, ExitCode: -1, Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		ce.Err = ctx.Err()
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		ce.ExitCode = exitErr.ExitCode()
	default:
		ce.Err = err
	}
	return nil, ce
}

func (h *LocalHost) Output(ctx context.Context, cmd string) (string, error) {
	out, err := h.exec(ctx, cmd)
	return string(out), err
}

func (h *LocalHost) Run(ctx context.Context, cmd string) (string, error) {
	return h.Output(ctx, cmd)
}

func (h *LocalHost) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", h.name, err)
	}
	return b, nil
}

// WriteFile writes a temporary file in the target directory (so the rename
// stays within one filesystem and is atomic), syncs it and renames it over
// path.
func (h *LocalHost) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("node %s: writing %s: %w", h.name, path, err)
		}
	}()
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".haadm-tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	// Chmod rather than a create mode: the umask must not weaken or
	// strengthen what the caller asked for.
	if err := f.Chmod(mode.Perm()); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// Upload copies s.Data into a temporary file next to s.Path, hashing it on
// the way, and renames it into place once size and sha256 match.
func (h *LocalHost) Upload(ctx context.Context, s Stream) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("node %s: uploading %s: %w", h.name, s.Path, err)
		}
	}()
	dir := filepath.Dir(s.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(s.Path)+".haadm-tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, sum), ctxReader{ctx, s.Data})
	if err != nil {
		return err
	}
	if err := checkStream(s, n, hex.EncodeToString(sum.Sum(nil))); err != nil {
		return err
	}
	if err := f.Chmod(s.Mode.Perm()); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), s.Path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// checkStream compares what arrived with what the Stream promised.
func checkStream(s Stream, n int64, sum string) error {
	if n != s.Size {
		return fmt.Errorf("short write: received %d of %d bytes", n, s.Size)
	}
	if sum != s.SHA256 {
		return fmt.Errorf("sha256 %s, want %s: corrupted in transit", sum, s.SHA256)
	}
	return nil
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ReadFiles reads paths with the same results as SSHHost.ReadFiles: a path
// that is missing, or has a file where a directory should be (test -e is
// false for both), is absent from the result.
func (h *LocalHost) ReadFiles(ctx context.Context, paths []string) (map[string]File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	files := make(map[string]File, len(paths))
	for _, p := range uniquePaths(paths) {
		f, err := readLocalFile(p)
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		case err != nil:
			return nil, fmt.Errorf("node %s: reading %s: %w", h.name, p, err)
		default:
			files[p] = f
		}
	}
	return files, nil
}

func readLocalFile(p string) (File, error) {
	// Stat before opening: opening a FIFO would block.
	fi, err := os.Stat(p)
	if err != nil {
		return File{}, err
	}
	if err := checkRegular(fi); err != nil {
		return File{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	// Mode and owner of the file actually read, in case p was replaced
	// since the Stat.
	if fi, err = f.Stat(); err != nil {
		return File{}, err
	}
	if err := checkRegular(fi); err != nil {
		return File{}, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return File{}, err
	}
	uid, gid, _ := fileOwner(fi)
	return File{Path: p, Data: data, Mode: fi.Mode().Perm(), UID: uid, GID: gid}, nil
}

func checkRegular(fi fs.FileInfo) error {
	switch {
	case fi.IsDir():
		return errors.New("is a directory")
	case !fi.Mode().IsRegular():
		return fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	return nil
}

// WriteFiles stages every file as a temporary file next to its target and
// renames them into place only when all are staged, like
// SSHHost.WriteFiles. chown is skipped when the owner is already right, so
// a batch owned by the current user works without root.
func (h *LocalHost) WriteFiles(ctx context.Context, files []File) (err error) {
	if len(files) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkBatch(files); err != nil {
		return fmt.Errorf("node %s: %w", h.name, err)
	}
	type staged struct{ tmp, path string }
	var temps []staged
	defer func() {
		if err != nil {
			for _, s := range temps {
				os.Remove(s.tmp)
			}
		}
	}()
	for _, f := range files {
		if f.Dir {
			if err := makeLocalDir(f); err != nil {
				return fmt.Errorf("node %s: creating directory %s: %w", h.name, f.Path, err)
			}
		}
	}
	for _, f := range files {
		if f.Dir {
			continue
		}
		tmp, err := stageLocalFile(f)
		if tmp != "" {
			temps = append(temps, staged{tmp, f.Path})
		}
		if err != nil {
			return fmt.Errorf("node %s: writing %s: %w", h.name, f.Path, err)
		}
	}
	// The last point at which giving up leaves every target as it was.
	if err := ctx.Err(); err != nil {
		return err
	}
	dirs := map[string]bool{}
	for _, s := range temps {
		if err := os.Rename(s.tmp, s.path); err != nil {
			return fmt.Errorf("node %s: writing %s: %w", h.name, s.path, err)
		}
		dirs[filepath.Dir(s.path)] = true
	}
	for dir := range dirs {
		syncDir(dir)
	}
	return nil
}

func makeLocalDir(f File) error {
	if err := os.MkdirAll(f.Path, 0o755); err != nil {
		return err
	}
	fi, err := os.Stat(f.Path)
	if err != nil {
		return err
	}
	if err := chownIfNeeded(fi, f, func(uid, gid int) error { return os.Chown(f.Path, uid, gid) }); err != nil {
		return err
	}
	return os.Chmod(f.Path, f.Mode.Perm())
}

// stageLocalFile writes f to a temporary file next to it and returns the
// temporary file's name, also on failure once it exists.
func stageLocalFile(f File) (tmp string, err error) {
	if fi, err := os.Stat(f.Path); err == nil && fi.IsDir() {
		return "", errors.New("is a directory")
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	t, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".haadm-tmp-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if cerr := t.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := t.Write(f.Data); err != nil {
		return t.Name(), err
	}
	fi, err := t.Stat()
	if err != nil {
		return t.Name(), err
	}
	if err := chownIfNeeded(fi, f, t.Chown); err != nil {
		return t.Name(), err
	}
	// After chown, which may clear mode bits; and explicit rather than a
	// create mode, which the umask would change.
	if err := t.Chmod(f.Mode.Perm()); err != nil {
		return t.Name(), err
	}
	return t.Name(), t.Sync()
}

func chownIfNeeded(fi fs.FileInfo, f File, chown func(uid, gid int) error) error {
	if uid, gid, ok := fileOwner(fi); ok && uid == f.UID && gid == f.GID {
		return nil
	}
	return chown(f.UID, f.GID)
}

// syncDir makes a rename durable; failing to sync a directory is not worth
// failing the write for.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func (h *LocalHost) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (h *LocalHost) Close() error { return nil }
