package phases

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestProgressConsole: -v levels decide what reaches the console, colour
// only marks it, and the log file always has everything, plain.
func TestProgressConsole(t *testing.T) {
	emit := func(p *Progress) {
		p.Start("etcd", "emei", "add learner")
		p.Detail("etcd", "emei", "waiting for learner: 40% of the leader's log")
		p.Detail("lb", "emei", "/etc/nginx/nginx.conf\n+ server 10.250.0.13:6443")
		p.Step("lb", "", 0, "WARNING: one machine")
		p.Fail("etcd", "wudang", 0, "promote learner", errors.New("timeout"))
	}
	for _, tt := range []struct {
		verbose int
		color   bool
		want    []string
		not     []string
	}{
		{0, false, []string{"[lb] WARNING: one machine", "[etcd] wudang: promote learner: FAILED"}, []string{"start:", "waiting for", "+ server", "\x1b["}},
		{1, false, []string{"[etcd] emei: start: add learner", "waiting for learner: 40%"}, []string{"+ server"}},
		{2, false, []string{"+ server 10.250.0.13:6443"}, []string{"\x1b["}},
		{0, true, []string{"\x1b[1m[etcd]\x1b[0m wudang: promote learner: \x1b[31mFAILED\x1b[0m", "\x1b[33mWARNING\x1b[0m"}, nil},
	} {
		var console, log bytes.Buffer
		p := NewProgress(&console, &log)
		p.Console(tt.verbose, tt.color)
		emit(p)
		mustContain(t, console.String(), tt.want...)
		for _, n := range tt.not {
			if strings.Contains(console.String(), n) {
				t.Errorf("-v=%d color=%v: console has %q:\n%s", tt.verbose, tt.color, n, console.String())
			}
		}
		mustContain(t, log.String(), "start: add learner", "waiting for learner", "+ server 10.250.0.13:6443", "promote learner: FAILED: timeout")
		if strings.Contains(log.String(), "\x1b[") {
			t.Errorf("the log file has colour codes")
		}
	}
}
