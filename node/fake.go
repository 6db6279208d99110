package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path"
	"sort"
	"strings"
	"sync"
)

// Fake is a scripted in-memory Host for unit tests of the phases. Files live
// in a map, commands are answered by prefix responses or a handler, and
// every call is recorded in order. An unscripted command fails with exit
// code 127 so that a test notices commands it did not expect.
type Fake struct {
	name string

	mu        sync.Mutex
	files     map[string]fakeFile
	responses map[string]fakeResponse
	handler   func(cmd string) (string, error)
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	calls     []Call
	closed    bool
	uploadErr map[string]string
}

type fakeFile struct {
	data     []byte
	mode     fs.FileMode
	uid, gid int
	dir      bool
}

type fakeResponse struct {
	stdout string
	err    error
}

// CallKind names the Host method a Call records.
type CallKind string

const (
	CallOutput CallKind = "output"
	CallRun    CallKind = "run"
	CallRead   CallKind = "read"
	CallWrite  CallKind = "write"
	// CallUpload is an Upload: Path, Mode and the Data that arrived.
	CallUpload CallKind = "upload"
	CallDial   CallKind = "dial"
	CallClose  CallKind = "close"
)

// Call is one recorded call on a Fake.
type Call struct {
	Kind CallKind
	Cmd  string // output, run
	Path string // read, write
	Data []byte // write
	Mode fs.FileMode
	// UID, GID and Dir are those of a File written by WriteFiles.
	UID, GID int
	Dir      bool
	Addr     string // dial: "network addr"
}

var _ Host = (*Fake)(nil)

// NewFake returns an empty Fake called name.
func NewFake(name string) *Fake {
	return &Fake{
		name:      name,
		files:     map[string]fakeFile{},
		responses: map[string]fakeResponse{},
	}
}

// SetFile puts a file on the fake node without recording a call.
func (f *Fake) SetFile(path string, data []byte, mode fs.FileMode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = fakeFile{data: clone(data), mode: mode}
}

// SetFiles puts files (and, with Dir set, directories) with their owners on
// the fake node without recording calls.
func (f *Fake) SetFiles(files ...File) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ff := range files {
		f.files[ff.Path] = toFakeFile(ff)
	}
}

// Stat returns everything known about path: content, mode, owner and
// whether it is a directory.
func (f *Fake) Stat(path string) (File, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ff, ok := f.files[path]
	if !ok {
		return File{}, false
	}
	return ff.toFile(path), true
}

func toFakeFile(f File) fakeFile {
	return fakeFile{data: clone(f.Data), mode: f.Mode, uid: f.UID, gid: f.GID, dir: f.Dir}
}

func (ff fakeFile) toFile(path string) File {
	return File{Path: path, Data: clone(ff.data), Mode: ff.mode, UID: ff.uid, GID: ff.gid, Dir: ff.dir}
}

// RemoveFile deletes a file from the fake node.
func (f *Fake) RemoveFile(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.files, path)
}

// File returns a file's content and mode as written.
func (f *Fake) File(path string) (data []byte, mode fs.FileMode, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ff, ok := f.files[path]
	return clone(ff.data), ff.mode, ok
}

// Files lists the paths on the fake node (directories written by WriteFiles
// included), sorted.
func (f *Fake) Files() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	paths := make([]string, 0, len(f.files))
	for p := range f.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// Respond answers every command starting with prefix; the longest matching
// prefix wins. Use a *CmdError as err to simulate a failing command.
func (f *Fake) Respond(prefix, stdout string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.responses[prefix] = fakeResponse{stdout: stdout, err: err}
}

// Fail makes commands starting with prefix exit with code and stderr.
func (f *Fake) Fail(prefix string, code int, stderr string) {
	f.Respond(prefix, "", &CmdError{Node: f.name, Cmd: prefix, ExitCode: code, Stderr: []byte(stderr)})
}

// SetHandler answers the commands that no Respond prefix matches.
func (f *Fake) SetHandler(h func(cmd string) (stdout string, err error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = h
}

// SetDial makes DialContext use fn; without it DialContext fails.
func (f *Fake) SetDial(fn func(ctx context.Context, network, addr string) (net.Conn, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dial = fn
}

// Calls returns every call so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Call, len(f.calls))
	copy(out, f.calls)
	return out
}

// Commands returns the commands of the Run and Output calls, in order.
func (f *Fake) Commands() []string {
	var cmds []string
	for _, c := range f.Calls() {
		if c.Kind == CallRun || c.Kind == CallOutput {
			cmds = append(cmds, c.Cmd)
		}
	}
	return cmds
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func (f *Fake) Name() string { return f.name }

func (f *Fake) Output(ctx context.Context, cmd string) (string, error) {
	return f.command(ctx, CallOutput, cmd)
}

func (f *Fake) Run(ctx context.Context, cmd string) (string, error) {
	return f.command(ctx, CallRun, cmd)
}

func (f *Fake) command(ctx context.Context, kind CallKind, cmd string) (string, error) {
	f.mu.Lock()
	f.calls = append(f.calls, Call{Kind: kind, Cmd: cmd})
	best, found := "", false
	for p := range f.responses {
		if strings.HasPrefix(cmd, p) && (!found || len(p) > len(best)) {
			best, found = p, true
		}
	}
	resp := f.responses[best]
	handler := f.handler
	f.mu.Unlock()

	if err := ctx.Err(); err != nil {
		return "", &CmdError{Node: f.name, Cmd: cmd, ExitCode: -1, Err: err}
	}
	switch {
	case found:
		return resp.stdout, withCmd(resp.err, cmd)
	case handler != nil:
		// The handler runs unlocked so that it may call back into the fake,
		// e.g. to create a file as a side effect.
		return handler(cmd)
	}
	return "", &CmdError{Node: f.name, Cmd: cmd, ExitCode: 127,
		Stderr: []byte(fmt.Sprintf("fake node %s: unexpected command", f.name))}
}

// withCmd puts the actual command into a canned CmdError, whose Cmd was
// only the prefix.
func withCmd(err error, cmd string) error {
	if ce, ok := err.(*CmdError); ok {
		c := *ce
		c.Cmd = cmd
		return &c
	}
	return err
}

func (f *Fake) ReadFile(ctx context.Context, path string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Kind: CallRead, Path: path})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ff, ok := f.files[path]
	if !ok {
		return nil, fmt.Errorf("node %s: %w", f.name, &fs.PathError{Op: "read", Path: path, Err: fs.ErrNotExist})
	}
	if ff.dir {
		return nil, fmt.Errorf("node %s: reading %s: is a directory", f.name, path)
	}
	return clone(ff.data), nil
}

// ReadFiles records a read per path and returns copies of the files.
func (f *Fake) ReadFiles(ctx context.Context, paths []string) (map[string]File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range paths {
		f.calls = append(f.calls, Call{Kind: CallRead, Path: p})
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[string]File, len(paths))
	for _, p := range paths {
		ff, ok := f.files[p]
		switch {
		case !ok:
		case ff.dir:
			return nil, fmt.Errorf("node %s: reading %s: is a directory", f.name, p)
		default:
			out[p] = ff.toFile(p)
		}
	}
	return out, nil
}

// WriteFiles records a write per entry and stores the batch. Like the real
// hosts it refuses the whole batch, storing nothing, when an entry could not
// be staged: a file where a directory is needed or the other way round.
func (f *Fake) WriteFiles(ctx context.Context, files []File) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ff := range files {
		f.calls = append(f.calls, Call{Kind: CallWrite, Path: ff.Path, Data: clone(ff.Data), Mode: ff.Mode, UID: ff.UID, GID: ff.GID, Dir: ff.Dir})
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkBatch(files); err != nil {
		return fmt.Errorf("node %s: %w", f.name, err)
	}
	for _, ff := range files {
		if err := f.stageable(ff); err != nil {
			return fmt.Errorf("node %s: writing %s: %w", f.name, ff.Path, err)
		}
	}
	for _, ff := range files {
		f.files[ff.Path] = toFakeFile(ff)
	}
	return nil
}

// stageable checks ff against the stored entries. Parent directories the
// fake never heard of count as created, as by mkdir -p.
func (f *Fake) stageable(ff File) error {
	if old, ok := f.files[ff.Path]; ok && old.dir != ff.Dir {
		if old.dir {
			return errors.New("is a directory")
		}
		return errors.New("not a directory")
	}
	for dir := path.Dir(ff.Path); ; dir = path.Dir(dir) {
		if old, ok := f.files[dir]; ok && !old.dir {
			return fmt.Errorf("%s is not a directory", dir)
		}
		if next := path.Dir(dir); next == dir {
			return nil
		}
	}
}

func (f *Fake) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Kind: CallWrite, Path: path, Data: clone(data), Mode: mode})
	if err := ctx.Err(); err != nil {
		return err
	}
	f.files[path] = fakeFile{data: clone(data), mode: mode}
	return nil
}

// Upload reads the stream whole (a test's files are small), records it
// and, like the real hosts, stores it only when size and sha256 match.
// A path scripted with FailUpload fails after reading.
func (f *Fake) Upload(ctx context.Context, s Stream) error {
	data, err := io.ReadAll(s.Data)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Kind: CallUpload, Path: s.Path, Data: clone(data), Mode: s.Mode})
	if err != nil {
		return fmt.Errorf("node %s: uploading %s: %w", f.name, s.Path, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	if err := checkStream(s, int64(len(data)), hex.EncodeToString(sum[:])); err != nil {
		return fmt.Errorf("node %s: uploading %s: %w", f.name, s.Path, err)
	}
	if msg, ok := f.uploadErr[s.Path]; ok {
		return fmt.Errorf("node %s: uploading %s: %s", f.name, s.Path, msg)
	}
	f.files[s.Path] = fakeFile{data: data, mode: s.Mode}
	return nil
}

// FailUpload makes Uploads to path fail with msg (after the data arrived).
func (f *Fake) FailUpload(path, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.uploadErr == nil {
		f.uploadErr = map[string]string{}
	}
	f.uploadErr[path] = msg
}

func (f *Fake) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	f.calls = append(f.calls, Call{Kind: CallDial, Addr: network + " " + addr})
	dial := f.dial
	f.mu.Unlock()
	if dial == nil {
		return nil, fmt.Errorf("node %s: fake cannot dial %s %s (no SetDial)", f.name, network, addr)
	}
	return dial(ctx, network, addr)
}

func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Kind: CallClose})
	f.closed = true
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
