package node

import (
	"fmt"
	"strings"
)

// CmdError is the error of a command that ran on a node and failed. It keeps
// the node, the command and the full output so that a failing phase can be
// diagnosed from haadm's output alone, without logging in to the node.
type CmdError struct {
	Node string
	Cmd  string
	// ExitCode is the command's exit status, or -1 when the command never
	// reported one (killed by a signal, connection lost, context cancelled).
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	// Err is the underlying cause when there is no exit status, e.g.
	// context.Canceled; nil for an ordinary non-zero exit.
	Err error
}

// Output is shown at most this long in Error(); the end of the output is
// kept because that is where tools print the reason they failed.
const maxErrorOutput = 2048

// Long commands (scripts, inline manifests) are shortened in Error() so the
// message stays readable; the full command is in the Cmd field.
const maxErrorCmd = 300

func (e *CmdError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "node %s: command %q ", e.Node, truncateMiddle(e.Cmd, maxErrorCmd))
	switch {
	case e.Err != nil:
		fmt.Fprintf(&b, "failed: %v", e.Err)
	default:
		fmt.Fprintf(&b, "exited with code %d", e.ExitCode)
	}
	if out := e.output(); out != "" {
		b.WriteString(": ")
		b.WriteString(out)
	}
	return b.String()
}

func (e *CmdError) Unwrap() error { return e.Err }

// output prefers stderr, where tools explain failures, and falls back to
// stdout for tools that print their errors there.
func (e *CmdError) output() string {
	stderr := strings.TrimSpace(string(e.Stderr))
	stdout := strings.TrimSpace(string(e.Stdout))
	out := stderr
	if out == "" {
		out = stdout
	}
	if len(out) > maxErrorOutput {
		out = "…" + strings.ToValidUTF8(out[len(out)-maxErrorOutput:], "")
	}
	return out
}

func truncateMiddle(s string, n int) string {
	if len(s) <= n {
		return s
	}
	half := n / 2
	return strings.ToValidUTF8(s[:half], "") + " … " + strings.ToValidUTF8(s[len(s)-half:], "")
}

// ShellQuote quotes s as one word for a POSIX shell, as every script haadm
// builds for a node needs. Single quotes keep
// everything literal; an embedded single quote is closed, escaped and
// reopened.
func ShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
