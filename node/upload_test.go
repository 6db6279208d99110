package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testUpload is the Upload behaviour every Host shares: a stream larger
// than any buffer arrives whole with its mode; a short or corrupted stream
// fails, names the file and leaves the old one in place.
func testUpload(t *testing.T, h Host, read func(p string) ([]byte, os.FileMode, bool), dir string) {
	ctx := context.Background()
	data := pattern(3<<20+17, 7) // 3 MiB and a bit: many SSH packets
	sum := sha256.Sum256(data)
	p := filepath.Join(dir, "sub", "snap.db")
	s := Stream{Path: p, Mode: 0o600, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Data: bytes.NewReader(data)}
	if err := h.Upload(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, mode, ok := read(p)
	if !ok || !bytes.Equal(got, data) || mode.Perm() != 0o600 {
		t.Fatalf("uploaded %d bytes mode %04o (%v), want %d bytes 0600", len(got), mode.Perm(), ok, len(data))
	}
	for name, bad := range map[string]Stream{
		"short":     {Path: p, Mode: 0o600, Size: s.Size, SHA256: s.SHA256, Data: io.LimitReader(bytes.NewReader(data), 1000)},
		"corrupted": {Path: p, Mode: 0o600, Size: s.Size, SHA256: strings.Repeat("0", 64), Data: bytes.NewReader(data)},
	} {
		err := h.Upload(ctx, bad)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s stream: %v, want an error naming %s", name, err, p)
		}
		if got, _, _ := read(p); !bytes.Equal(got, data) {
			t.Errorf("%s stream replaced the file", name)
		}
	}
}

func readLocal(p string) ([]byte, os.FileMode, bool) {
	b, err := os.ReadFile(p)
	fi, err2 := os.Stat(p)
	if err != nil || err2 != nil {
		return nil, 0, false
	}
	return b, fi.Mode(), true
}

func TestSSHUpload(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	cfg, _ := s.clientConfig(t, "  IdentitiesOnly yes", s.knownHostsLine("ed25519"))
	h := dialTest(t, s, SSHOptions{ConfigFile: cfg})
	dir := t.TempDir()
	testUpload(t, h, readLocal, dir)
	assertNoTempFiles(t, filepath.Join(dir, "sub"))
}

func TestLocalUpload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	testUpload(t, NewLocalHost("here"), readLocal, dir)
	assertNoTempFiles(t, filepath.Join(dir, "sub"))
}

func TestFakeUpload(t *testing.T) {
	t.Parallel()
	f := NewFake("emei")
	testUpload(t, f, func(p string) ([]byte, os.FileMode, bool) { return f.File(p) }, "/x")
	if c := f.Calls(); len(c) != 3 || c[0].Kind != CallUpload {
		t.Errorf("calls %v", c)
	}
}
