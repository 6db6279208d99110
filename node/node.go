// Package node is haadm's only door to a machine: run a command, read a file,
// write a file atomically, open a TCP connection from the node's side.
// Phases see nothing but this interface, so SSH, local execution, a scripted
// fake and the dry-run recorder are interchangeable.
//
// Implementations: SSHHost (DialSSH, and DialAll for several nodes at once),
// LocalHost, Fake for unit tests, and Recorder, which wraps another Host
// for a dry run.
package node

import (
	"context"
	"io/fs"
	"net"
)

// Host is one machine of the cluster.
type Host interface {
	// Name is the node name used in messages and in the ssh_config (e.g. "emei").
	Name() string
	// Output runs a command that only reads state and returns its stdout.
	// The dry-run recorder lets it through.
	Output(ctx context.Context, cmd string) (string, error)
	// Run runs a command that changes state. The dry-run recorder records it
	// instead of running it.
	Run(ctx context.Context, cmd string) (string, error)
	// ReadFile returns the file's content; a missing file gives an error that
	// satisfies errors.Is(err, fs.ErrNotExist).
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// WriteFile writes through a temporary file and a rename in the same
	// directory, creating parent directories, so readers never see half a file.
	WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error
	// DialContext opens a connection from the node's side of the network
	// (an SSH direct-tcpip channel), e.g. to the node's own etcd on 127.0.0.1.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	Close() error
}
