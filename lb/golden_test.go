package lb

import (
	"flag"
	"testing"

	"github.com/haadm/haadm/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden/lb")

// checkGolden compares got with testdata/golden/lb/<name> (see internal/golden).
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, "lb", name, got, *update)
}
