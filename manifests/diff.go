package manifests

import (
	"bytes"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// Diff returns a unified diff (3 lines of context) from old to new, or ""
// when they are equal, for dry runs and confirmation prompts.
func Diff(old, new []byte) string {
	if bytes.Equal(old, new) {
		return ""
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        splitLines(old),
		B:        splitLines(new),
		FromFile: "old",
		ToFile:   "new",
		Context:  3,
	})
	if err != nil {
		// difflib only fails when writing to its buffer, which cannot fail.
		return err.Error()
	}
	return d
}

// splitLines keeps each line's newline, unlike difflib.SplitLines, which
// invents an empty last line for text that ends in a newline. A missing final
// newline is shown the way diff(1) does.
func splitLines(b []byte) []string {
	lines := strings.SplitAfter(string(b), "\n")
	last := len(lines) - 1
	if lines[last] == "" {
		return lines[:last]
	}
	lines[last] += "\n\\ No newline at end of file\n"
	return lines
}
