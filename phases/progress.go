package phases

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Progress writes one line per step to the terminal ("[phase] node: message
// (duration)") and everything, details included, to the log file.
type Progress struct {
	mu      sync.Mutex
	console io.Writer
	detail  io.Writer
	start   time.Time
}

// NewProgress writes steps to console and steps plus details to detail
// (either may be io.Discard).
func NewProgress(console, detail io.Writer) *Progress {
	return &Progress{console: console, detail: detail, start: time.Now()}
}

func (p *Progress) line(phase, node, msg string, d time.Duration) string {
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

// Step reports a finished step on the console and in the log.
func (p *Progress) Step(phase, node string, d time.Duration, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.line(phase, node, msg, d)
	fmt.Fprintln(p.console, l)
	fmt.Fprintf(p.detail, "%s %s\n", time.Now().Format(time.RFC3339Nano), l)
}

// Detail goes to the log file only.
func (p *Progress) Detail(phase, node, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.detail, "%s %s\n", time.Now().Format(time.RFC3339Nano), p.line(phase, node, msg, 0))
}

// Timed runs fn and reports it as a step with its duration; a failure is
// reported too, so the log shows where time went either way.
func (p *Progress) Timed(phase, node, msg string, fn func() error) error {
	t0 := time.Now()
	err := fn()
	if err != nil {
		p.Step(phase, node, time.Since(t0), msg+": FAILED: "+err.Error())
		return err
	}
	p.Step(phase, node, time.Since(t0), msg)
	return nil
}
