package manifests

import (
	"flag"
	"testing"

	"github.com/haadm/haadm/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden/manifests")

// checkGolden compares got with testdata/golden/manifests/<name> (see internal/golden).
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, "manifests", name, got, *update)
}
