package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// Dry-run output ends up in terminals, CI logs and bug reports, so key
// material must never appear in it.

// secretLine matches lines that carry credentials inline: a kubeconfig's
// client key or token, an encryption configuration's key ("secret:"), a
// password.
var secretLine = regexp.MustCompile(`(?m)^(\s*-?\s*(?:client-key-data|token|secret|password):\s*)(\S+)\s*$`)

// Diff renders a planned write of path as a unified diff from old (the
// current content; exists says whether there is a current file at all) to
// new. Private keys show only as changed and inline kubeconfig credentials
// as short hashes, so the result is safe to print.
func Diff(path string, old, new []byte, exists bool) string {
	if isPrivateKey(path, old) || isPrivateKey(path, new) {
		return fmt.Sprintf("(private key content changed, %d bytes)\n", len(new))
	}
	from := "a" + path
	if !exists {
		from = "/dev/null (new file)"
	}
	diff, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        diffLines(redactLines(old)),
		B:        diffLines(redactLines(new)),
		FromFile: from,
		ToFile:   "b" + path,
		Context:  3,
	})
	if err != nil {
		return fmt.Sprintf("(cannot diff: %v)\n", err)
	}
	if diff == "" {
		// Only a redacted secret changed, or the file is new and empty.
		if !exists && len(new) == 0 {
			return "(new empty file)\n"
		}
		return "(only redacted secrets changed)\n"
	}
	return diff
}

// isPrivateKey decides by content (a PEM private key block anywhere, not
// only in pki) and by name: a .key file may hold a key without PEM markers.
func isPrivateKey(path string, data []byte) bool {
	return bytes.Contains(data, []byte("PRIVATE KEY-----")) || strings.HasSuffix(path, ".key")
}

// diffLines splits s into lines that each end in a newline. Unlike
// difflib.SplitLines it adds no empty last line, which would show up in every
// diff; a missing final newline is marked the way diff(1) does.
func diffLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if last := lines[len(lines)-1]; last == "" {
		lines = lines[:len(lines)-1]
	} else {
		lines[len(lines)-1] = last + "\n\\ No newline at end of file\n"
	}
	return lines
}

// redactLines replaces inline credentials by a short hash, so the diff
// still shows whether they changed.
func redactLines(data []byte) string {
	return secretLine.ReplaceAllStringFunc(string(data), func(line string) string {
		m := secretLine.FindStringSubmatch(line)
		sum := sha256.Sum256([]byte(m[2]))
		return m[1] + "(redacted, sha256:" + hex.EncodeToString(sum[:4]) + ")"
	})
}
