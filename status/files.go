package status

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/haadm/haadm/node"
)

// fileRead is one file read from a node.
type fileRead struct {
	data []byte
	err  error
}

// hostFiles are the files read from one node, by path.
type hostFiles map[string]fileRead

// readHostFiles reads every file status looks at, in one round trip.
// Which of them matter depends on the node's role, which the API tells only
// later, and a few small files too many cost nothing.
func readHostFiles(ctx context.Context, in *Inputs, h node.Host) hostFiles {
	paths := statusFiles()
	ctx, cancel := context.WithTimeout(ctx, in.timeout())
	defer cancel()
	got, err := within(ctx, func() (map[string]node.File, error) { return h.ReadFiles(ctx, paths) })
	files := hostFiles{}
	for _, p := range paths {
		switch f, ok := got[p]; {
		case err != nil && ctx.Err() != nil:
			// A node that does not answer in time is reported once per
			// file, not waited for again.
			files[p] = fileRead{err: fmt.Errorf("read %s: no answer within %v", p, in.timeout())}
		case err != nil:
			files[p] = fileRead{err: err}
		case !ok:
			files[p] = fileRead{err: notExist(p)}
		default:
			files[p] = fileRead{data: f.Data}
		}
	}
	return files
}

func notExist(path string) error {
	return &fs.PathError{Op: "read", Path: path, Err: fs.ErrNotExist}
}

// within returns f's result, or ctx's error as soon as ctx ends even if f
// does not heed it (a stuck SSH channel); a late result is dropped.
func within[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
