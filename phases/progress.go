package phases

import (
	"fmt"
	"io"
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
	fmt.Fprintln(p.console, l)
	p.log(l)
}

// Start logs that a step began, so the log shows what hung.
func (p *Progress) Start(phase, node, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log(line(phase, node, "start: "+msg, 0))
}

// Fail reports a failed step.
func (p *Progress) Fail(phase, node string, d time.Duration, msg string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := line(phase, node, msg+": FAILED", d)
	fmt.Fprintln(p.console, l)
	p.log(l + ": " + err.Error())
}

// Detail goes to the log file only.
func (p *Progress) Detail(phase, node, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log(line(phase, node, msg, 0))
}
