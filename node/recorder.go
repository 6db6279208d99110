package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"sync"
)

// ChangeKind is what a dry-run Change would do.
type ChangeKind string

const (
	ChangeRun   ChangeKind = "run"
	ChangeWrite ChangeKind = "write"
)

// Change is one state-changing action a dry run skipped.
type Change struct {
	Node string
	Kind ChangeKind
	Cmd  string // run
	Path string // write
	Mode fs.FileMode
	// NewFile is set for a write that creates the file.
	NewFile bool
	// Diff is a unified diff of the write, with secrets redacted.
	Diff string
}

func (c Change) String() string {
	if c.Kind == ChangeRun {
		return fmt.Sprintf("%s: run: %s", c.Node, c.Cmd)
	}
	what := "write"
	if c.NewFile {
		what = "write new file"
	}
	return fmt.Sprintf("%s: %s %s (mode %04o)\n%s", c.Node, what, c.Path, c.Mode.Perm(), strings.TrimRight(c.Diff, "\n"))
}

// fileModer is implemented by hosts that can report a file's mode, so that
// a write changing only the mode still shows up in a dry run.
type fileModer interface {
	FileMode(ctx context.Context, path string) (fs.FileMode, error)
}

// Recorder is the dry-run Host: it reads through to the real node and
// records, instead of doing, everything that would change it. Writes whose
// content (and mode) the node already has record nothing, so a dry run
// after a converged promote reports nothing to do.
//
// Output and ReadFile reach the real node; a ReadFile of a path written
// earlier in the same dry run returns the planned content, so later steps
// see the planned state. Output does not: a command reading such a file
// sees the node's real content.
type Recorder struct {
	inner Host

	mu      sync.Mutex
	planned map[string]fakeFile
	changes []Change
}

var _ Host = (*Recorder)(nil)

// NewRecorder wraps h for a dry run.
func NewRecorder(h Host) *Recorder {
	return &Recorder{inner: h, planned: map[string]fakeFile{}}
}

// Changes returns the recorded changes in order.
func (r *Recorder) Changes() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Change, len(r.changes))
	copy(out, r.changes)
	return out
}

func (r *Recorder) Name() string { return r.inner.Name() }

func (r *Recorder) Output(ctx context.Context, cmd string) (string, error) {
	return r.inner.Output(ctx, cmd)
}

// Run records cmd and returns empty output without running it.
func (r *Recorder) Run(ctx context.Context, cmd string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, Change{Node: r.inner.Name(), Kind: ChangeRun, Cmd: cmd})
	return "", nil
}

func (r *Recorder) ReadFile(ctx context.Context, path string) ([]byte, error) {
	r.mu.Lock()
	p, ok := r.planned[path]
	r.mu.Unlock()
	if ok {
		return clone(p.data), nil
	}
	return r.inner.ReadFile(ctx, path)
}

// WriteFile records the write with a diff against the current (or planned)
// content, unless nothing would change.
func (r *Recorder) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error {
	r.mu.Lock()
	p, planned := r.planned[path]
	r.mu.Unlock()

	old, oldMode, exists := p.data, p.mode, planned
	if !planned {
		var err error
		old, err = r.inner.ReadFile(ctx, path)
		switch {
		case err == nil:
			exists = true
		case errors.Is(err, fs.ErrNotExist):
		default:
			return fmt.Errorf("dry run: reading current %s: %w", path, err)
		}
		if exists {
			oldMode = mode // unknown unless the host can tell
			if m, ok := r.inner.(fileModer); ok {
				if oldMode, err = m.FileMode(ctx, path); err != nil {
					return fmt.Errorf("dry run: mode of %s: %w", path, err)
				}
			}
		}
	}

	if exists && bytes.Equal(old, data) && oldMode.Perm() == mode.Perm() {
		return nil
	}
	c := Change{Node: r.inner.Name(), Kind: ChangeWrite, Path: path, Mode: mode, NewFile: !exists}
	switch {
	case exists && bytes.Equal(old, data):
		c.Diff = fmt.Sprintf("(content unchanged, mode %04o -> %04o)\n", oldMode.Perm(), mode.Perm())
	default:
		c.Diff = fileDiff(path, old, data, exists)
		if exists && oldMode.Perm() != mode.Perm() {
			c.Diff = fmt.Sprintf("(mode %04o -> %04o)\n", oldMode.Perm(), mode.Perm()) + c.Diff
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.planned[path] = fakeFile{data: clone(data), mode: mode}
	r.changes = append(r.changes, c)
	return nil
}

// FileMode reports the planned mode of a file written in this dry run, else
// the node's, when the inner host can tell.
func (r *Recorder) FileMode(ctx context.Context, path string) (fs.FileMode, error) {
	r.mu.Lock()
	p, ok := r.planned[path]
	r.mu.Unlock()
	if ok {
		return p.mode, nil
	}
	m, ok := r.inner.(fileModer)
	if !ok {
		return 0, fmt.Errorf("node %s: cannot stat %s", r.inner.Name(), path)
	}
	return m.FileMode(ctx, path)
}

func (r *Recorder) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return r.inner.DialContext(ctx, network, addr)
}

// Close closes the wrapped host.
func (r *Recorder) Close() error { return r.inner.Close() }
