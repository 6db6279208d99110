// Package phaselog reads haadm's log file (--log-file) into where a run's
// time went: per phase, and per step ("[etcd] wudang: etcd member
// started"). The log is the place for this because every line carries a
// timestamp; the console's "(6s)" durations are rounded and only on
// finished steps. Pure: a reader in, numbers out.
package phaselog

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// Line is one timestamped progress line: "<RFC3339Nano> [phase] node: msg".
type Line struct {
	At    time.Time
	Phase string
	Node  string // "" for a line about the whole phase
	Msg   string
}

// Parse reads the progress lines of a log and skips the rest (the
// continuation lines of diffs and scripts carry no timestamp).
func Parse(r io.Reader) ([]Line, error) {
	var out []Line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		if l, ok := parseLine(sc.Text()); ok {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading haadm's log: %w", err)
	}
	return out, nil
}

func parseLine(s string) (Line, bool) {
	ts, rest, ok := strings.Cut(s, " ")
	if !ok || !strings.HasPrefix(rest, "[") {
		return Line{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Line{}, false
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return Line{}, false
	}
	l := Line{At: at, Phase: rest[1:end]}
	msg := strings.TrimPrefix(rest[end+1:], " ")
	// "node: msg": a node name has no spaces and comes before the first
	// ": "; "planned in 0s: 2 step(s)" has a space before its colon and
	// "start: X" is a phase-wide step starting.
	if i := strings.Index(msg, ": "); i > 0 && !strings.ContainsAny(msg[:i], " /") && msg[:i] != "start" {
		l.Node, msg = msg[:i], msg[i+2:]
	}
	l.Msg = msg
	return l, true
}

// Plan is the phase name the breakdown gives to the phases' planning
// ("[etcd] planned in 81ms"): plans run together before anything is
// applied, so their time is one block, not the phases'.
const Plan = "plan"

// Startup is the time from the command's start to its first log line
// (reading the kubeconfig, discovering the nodes); Exit from the last
// line to the command's end.
const (
	Startup = "startup"
	Exit    = "exit"
)

// PhaseTime is how long a run spent in one phase.
type PhaseTime struct {
	Phase   string  `json:"phase"`
	Seconds float64 `json:"seconds"`
}

// Phases attributes the time between consecutive lines to the phase of
// the later line (a line is written when its work ends, or when a step
// starts right after the previous one ended), in the order phases first
// appear. start and end are the command's own start and end; zero values
// leave out Startup and Exit.
func Phases(lines []Line, start, end time.Time) []PhaseTime {
	var order []string
	sum := map[string]time.Duration{}
	add := func(p string, d time.Duration) {
		if _, seen := sum[p]; !seen {
			order = append(order, p)
		}
		sum[p] += max(d, 0)
	}
	if len(lines) > 0 && !start.IsZero() {
		add(Startup, lines[0].At.Sub(start))
	}
	for i, l := range lines {
		p := l.Phase
		if strings.HasPrefix(l.Msg, "planned in ") {
			p = Plan
		}
		var d time.Duration
		if i > 0 {
			d = l.At.Sub(lines[i-1].At)
		}
		add(p, d)
	}
	if len(lines) > 0 && !end.IsZero() {
		add(Exit, end.Sub(lines[len(lines)-1].At))
	}
	out := make([]PhaseTime, 0, len(order))
	for _, p := range order {
		out = append(out, PhaseTime{Phase: p, Seconds: sum[p].Seconds()})
	}
	return out
}

// Step is one step of one phase on one node, from its "start:" line to
// the line that reports it finished (or FAILED).
type Step struct {
	Phase   string  `json:"phase"`
	Node    string  `json:"node,omitempty"`
	What    string  `json:"what"`
	Seconds float64 `json:"seconds"`
	Failed  bool    `json:"failed,omitempty"`
}

// Steps pairs every "start: X" with the next line of the same phase and
// node that is X finished: "X", "X (1.2s)" or "X: FAILED (1.2s)". A step
// that never finished is left out.
func Steps(lines []Line) []Step {
	type open struct {
		at   time.Time
		what string
	}
	started := map[string][]open{} // phase|node -> steps started, oldest first
	var out []Step
	for _, l := range lines {
		key := l.Phase + "|" + l.Node
		if what, ok := strings.CutPrefix(l.Msg, "start: "); ok {
			started[key] = append(started[key], open{l.At, what})
			continue
		}
		for i, o := range started[key] {
			rest, ok := strings.CutPrefix(l.Msg, o.what)
			if !ok {
				continue
			}
			failed := strings.HasPrefix(rest, ": FAILED")
			if rest != "" && !strings.HasPrefix(rest, " (") && !failed {
				continue
			}
			out = append(out, Step{Phase: l.Phase, Node: l.Node, What: o.what, Seconds: l.At.Sub(o.at).Seconds(), Failed: failed})
			started[key] = append(started[key][:i:i], started[key][i+1:]...)
			break
		}
	}
	return out
}
