package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// FileMode returns the permission bits of path.
func (h *LocalHost) FileMode(ctx context.Context, path string) (fs.FileMode, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("node %s: %w", h.name, err)
	}
	return fi.Mode().Perm(), nil
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
	// Make the rename itself durable; failing to sync a directory is not
	// worth failing the write for.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func (h *LocalHost) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (h *LocalHost) Close() error { return nil }
