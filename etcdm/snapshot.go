package etcdm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// SnapshotInfo describes a snapshot Snapshot wrote.
type SnapshotInfo struct {
	Size   int64
	SHA256 string // of every byte written, trailer included, in hex
	// Version is the etcd server version that made it (etcd >= 3.6).
	Version string
}

// Snapshot streams a point-in-time snapshot from the endpoint cli picks to w
// and returns its size and sha256. etcd ends the stream
// with the sha256 of the database; a stream whose trailer does not match is
// an error, so a backup that a cut connection truncated is never taken for
// good. On error, w holds a partial snapshot the caller should discard.
func Snapshot(ctx context.Context, cli *clientv3.Client, w io.Writer) (SnapshotInfo, error) {
	resp, err := cli.SnapshotWithVersion(ctx)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("starting etcd snapshot: %w", err)
	}
	defer resp.Snapshot.Close()
	whole := sha256.New()
	trailer := &trailerCheck{db: sha256.New()}
	n, err := io.Copy(io.MultiWriter(w, whole, trailer), resp.Snapshot)
	info := SnapshotInfo{Size: n, Version: resp.Version}
	if err != nil {
		return info, fmt.Errorf("streaming etcd snapshot after %d bytes: %w", n, err)
	}
	if err := trailer.verify(n); err != nil {
		return info, err
	}
	info.SHA256 = hex.EncodeToString(whole.Sum(nil))
	return info, nil
}

// trailerCheck hashes everything but the last sha256.Size bytes seen, which
// it keeps aside: the stream's end is only known once it has ended.
type trailerCheck struct {
	db   hash.Hash
	tail []byte
}

func (t *trailerCheck) Write(p []byte) (int, error) {
	t.tail = append(t.tail, p...)
	if extra := len(t.tail) - sha256.Size; extra > 0 {
		t.db.Write(t.tail[:extra])
		t.tail = append(t.tail[:0], t.tail[extra:]...)
	}
	return len(p), nil
}

// verify uses the same test as etcdutl's restore for the trailer's presence:
// a bolt database is a whole number of pages, so only the trailer can make
// the size not a multiple of 512.
func (t *trailerCheck) verify(size int64) error {
	if size%512 != sha256.Size {
		return fmt.Errorf("etcd snapshot of %d bytes has no sha256 trailer: incomplete stream", size)
	}
	if !bytes.Equal(t.db.Sum(nil), t.tail) {
		return fmt.Errorf("etcd snapshot of %d bytes fails its sha256 check: corrupted or truncated stream", size)
	}
	return nil
}
