package phases

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress writes one line per node per step to the terminal
// ("[certs] emei: 17 files (0.4s)") and everything, details included, to
// the log file.
type Progress struct {
	mu      sync.Mutex
	console io.Writer
	detail  io.Writer
	// applied is told each step the run applied (see OnApplied).
	applied func(phase, node, what string)
	// verbose shows on the console what otherwise only the log has: 1
	// the starts and one-line details (waits), 2 the multi-line ones
	// (diffs, scripts) too.
	verbose int
	// color marks phases, failures and warnings on the console.
	color bool
}

// Console sets how much goes to the console, and whether in colour (for
// a terminal only; the log file never has any).
func (p *Progress) Console(verbose int, color bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.verbose, p.color = verbose, color
}

// ANSI colours: bold for the phase, red for failures, yellow for warnings.
const (
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiReset  = "\x1b[0m"
)

// paint colours a console line: its [phase] tag, a FAILED, a WARNING.
func (p *Progress) paint(l string) string {
	if !p.color {
		return l
	}
	if i := strings.IndexByte(l, ']'); strings.HasPrefix(l, "[") && i > 0 {
		l = ansiBold + l[:i+1] + ansiReset + l[i+1:]
	}
	l = strings.Replace(l, ": FAILED", ": "+ansiRed+"FAILED"+ansiReset, 1)
	return strings.Replace(l, "WARNING", ansiYellow+"WARNING"+ansiReset, 1)
}

// OnApplied makes fn hear of every step applied from now on: the run's
// backup records them in its manifest.
func (p *Progress) OnApplied(fn func(phase, node, what string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.applied = fn
}

// Applied reports a step that changed something; Work.apply is the one
// caller.
func (p *Progress) Applied(phase, node, what string) {
	p.mu.Lock()
	fn := p.applied
	p.mu.Unlock()
	if fn != nil {
		fn(phase, node, what)
	}
}

// NewProgress writes steps to console and steps plus details to detail
// (either may be io.Discard).
func NewProgress(console, detail io.Writer) *Progress {
	return &Progress{console: console, detail: detail}
}

func line(phase, node, msg string, d time.Duration) string {
	s := "[" + phase + "]"
	if node != "" {
		s += " " + node + ":"
	}
	s += " " + msg
	if d > 0 {
		s += fmt.Sprintf(" (%s)", d.Round(100*time.Millisecond))
	}
	return s
}

func (p *Progress) log(l string) {
	fmt.Fprintf(p.detail, "%s %s\n", time.Now().Format(time.RFC3339Nano), l)
}

// Step reports a finished step on the console and in the log.
func (p *Progress) Step(phase, node string, d time.Duration, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := line(phase, node, msg, d)
	fmt.Fprintln(p.console, p.paint(l))
	p.log(l)
}

// Start logs that a step began, so the log shows what hung.
func (p *Progress) Start(phase, node, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := line(phase, node, "start: "+msg, 0)
	if p.verbose >= 1 {
		fmt.Fprintln(p.console, p.paint(l))
	}
	p.log(l)
}

// Fail reports a failed step.
func (p *Progress) Fail(phase, node string, d time.Duration, msg string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := line(phase, node, msg+": FAILED", d)
	fmt.Fprintln(p.console, p.paint(l))
	p.log(l + ": " + err.Error())
}

// Detail goes to the log file, and to the console with -v (-vv for
// multi-line details).
func (p *Progress) Detail(phase, node, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := line(phase, node, msg, 0)
	if p.verbose >= 2 || p.verbose == 1 && !strings.Contains(msg, "\n") {
		fmt.Fprintln(p.console, p.paint(l))
	}
	p.log(l)
}
