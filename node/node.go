// Package node is haadm's only door to a machine: run a command, read files,
// write files atomically, open a TCP connection from the node's side.
// Phases see nothing but this interface, so SSH, local execution and a
// scripted fake are interchangeable.
//
// Implementations: SSHHost (DialSSH, and DialAll for several nodes at once),
// LocalHost, and Fake for unit tests. Diff renders a planned file change for
// a dry run with secrets redacted.
package node

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
)

// Host is one machine of the cluster.
type Host interface {
	// Name is the node name used in messages and in the ssh_config (e.g. "emei").
	Name() string
	// Output runs a command that only reads state and returns its stdout.
	Output(ctx context.Context, cmd string) (string, error)
	// Run runs a command that changes state. The hosts run it exactly like
	// Output; the split says which commands a dry run must not execute, and
	// a Fake records which was used.
	Run(ctx context.Context, cmd string) (string, error)
	// ReadFile returns the file's content; a missing file gives an error that
	// satisfies errors.Is(err, fs.ErrNotExist).
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// WriteFile writes through a temporary file and a rename in the same
	// directory, creating parent directories, so readers never see half a file.
	WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error
	// ReadFiles reads several files in one round trip. A missing file is
	// absent from the result, not an error; anything else that cannot be
	// read (a directory, no permission) is an error naming node and path.
	ReadFiles(ctx context.Context, paths []string) (map[string]File, error)
	// WriteFiles writes a batch in one round trip: every file is staged
	// next to its target (content, mode, owner) and checked, and only when
	// all are staged are they renamed into place, so a failure leaves every
	// target as it was. A File with Dir set is a directory to create.
	WriteFiles(ctx context.Context, files []File) error
	// Upload streams a file of any size (an etcd snapshot, an archive)
	// into a temporary file next to s.Path, checks its size and sha256 on
	// the node, and only then renames it into place; the content is never
	// held whole in memory.
	Upload(ctx context.Context, s Stream) error
	// DialContext opens a connection from the node's side of the network
	// (an SSH direct-tcpip channel), e.g. to the node's own etcd on 127.0.0.1.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	Close() error
}

// File is a file on a node: content and how it is kept. UID and GID 0 are
// root, which owns everything kubeadm writes.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode // permission bits
	UID  int
	GID  int
	// Dir makes WriteFiles create a directory (with Mode and owner) instead
	// of writing a file; ReadFiles never returns one.
	Dir bool
}

// Owner is UID:GID as chown takes it.
func (f File) Owner() string { return fmt.Sprintf("%d:%d", f.UID, f.GID) }

// Stream is a file Upload sends: its content comes from Data, which must
// yield exactly Size bytes whose sha256 (hex) is SHA256.
type Stream struct {
	Path   string
	Mode   fs.FileMode
	Size   int64
	SHA256 string
	Data   io.Reader
}
