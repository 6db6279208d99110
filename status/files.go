package status

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/haadm/haadm/node"
)

// fileRead is one file read from a node.
type fileRead struct {
	data []byte
	err  error
}

// hostFiles are the files read from one node, by path.
type hostFiles map[string]fileRead

// readHostFiles reads every file status looks at. Which of them matter
// depends on the node's role, which the API tells only later, and a few
// small files too many cost nothing; an SSH session costs 0.1 to 0.5 s on
// a busy node, so all of them come in one session when the node has a
// shell, and one session each otherwise (a fake, an odd shell).
func readHostFiles(ctx context.Context, in *Inputs, h node.Host) hostFiles {
	paths := statusFiles()
	ctx1, cancel := context.WithTimeout(ctx, in.timeout())
	out, err := within(ctx1, func() (string, error) { return h.Output(ctx1, batchScript(paths)) })
	timedOut := ctx1.Err() != nil
	cancel()
	files := hostFiles{}
	switch {
	case err == nil:
		files = parseBatch(out, paths)
	case timedOut:
		// A node that cannot run a shell in time will not cat files in
		// time either: report it once rather than wait again per file.
		for _, p := range paths {
			files[p] = fileRead{err: fmt.Errorf("read %s: no answer within %v", p, in.timeout())}
		}
		return files
	}
	var missing []string
	for _, p := range paths {
		if _, ok := files[p]; !ok {
			missing = append(missing, p)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range missing {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, in.timeout())
			defer cancel()
			data, err := within(ctx, func() ([]byte, error) { return h.ReadFile(ctx, p) })
			mu.Lock()
			defer mu.Unlock()
			files[p] = fileRead{data: data, err: err}
		})
	}
	wg.Wait()
	return files
}

// batchMarker starts the header of each file in the batch output.
const batchMarker = "==> haadm-status "

// batchScript prints, for every path, a header with its size and then the
// content; -1 marks a missing file. A file it cannot read gets no header,
// so that ReadFile reports the real error.
func batchScript(paths []string) string {
	var b strings.Builder
	b.WriteString("for f in")
	for _, p := range paths {
		b.WriteString(" " + p)
	}
	b.WriteString("; do\n")
	b.WriteString(`if [ ! -e "$f" ]; then printf '` + batchMarker + `%s -1\n' "$f"; ` +
		`elif [ -r "$f" ] && n=$(wc -c < "$f"); then printf '` + batchMarker + `%s %d\n' "$f" "$n"; cat -- "$f"; fi` + "\n")
	b.WriteString("done")
	return b.String()
}

// parseBatch reads batchScript's output. It keeps only what it is sure
// of: a header that does not match is the end, and the rest is read one
// file at a time.
func parseBatch(out string, paths []string) hostFiles {
	files := hostFiles{}
	rest := []byte(out)
	for len(rest) > 0 {
		header, body, ok := bytes.Cut(rest, []byte("\n"))
		if !ok || !bytes.HasPrefix(header, []byte(batchMarker)) {
			break
		}
		fields := strings.Fields(strings.TrimPrefix(string(header), batchMarker))
		if len(fields) != 2 || !slices.Contains(paths, fields[0]) {
			break
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil || n > len(body) {
			break
		}
		if n < 0 {
			files[fields[0]] = fileRead{err: notExist(fields[0])}
			rest = body
			continue
		}
		files[fields[0]] = fileRead{data: body[:n:n]}
		rest = body[n:]
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
