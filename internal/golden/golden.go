// Package golden compares test output with files under testdata/golden/,
// shared by the packages whose output is text (lb, manifests, status).
package golden

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
)

// Check compares got with ../testdata/golden/<pkg>/<name>, or rewrites that
// file when update is set (each package's tests pass their -update flag).
func Check(t *testing.T, pkg, name string, got []byte, update bool) {
	t.Helper()
	path := filepath.Join("..", "testdata", "golden", pkg, name)
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./%s -update` to create it)", err, pkg)
	}
	if !bytes.Equal(got, want) {
		diff, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(string(want)), B: difflib.SplitLines(string(got)),
			FromFile: path, ToFile: "got", Context: 3,
		})
		t.Errorf("output differs from %s (run `go test ./%s -update` if intended):\n%s", path, pkg, diff)
	}
}
