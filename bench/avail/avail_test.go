package avail

import (
	"fmt"
	"math"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// every100 is a request every 100 ms from..to (ms), each answering after
// 20 ms, failing where fail says so.
func every100(target, op string, from, to int, fail func(at int) bool) []Sample {
	var out []Sample
	for at := from; at < to; at += 100 {
		ok := fail == nil || !fail(at)
		s := Sample{Target: target, Op: op, Start: ms(at), End: ms(at + 20), OK: ok}
		if !ok {
			s.Err = fmt.Sprintf("failed at %d ms", at)
		}
		out = append(out, s)
	}
	return out
}

func TestAnalyze(t *testing.T) {
	t.Parallel()
	var s []Sample
	// shaolin: fails from 3.0 s to 4.5 s.
	s = append(s, every100("shaolin", "read", 0, 10000, func(at int) bool { return at >= 3000 && at < 4500 })...)
	// the endpoint: refused until 5 s, then fine but for one failure.
	s = append(s, every100("endpoint", "write", 0, 10000, func(at int) bool { return at < 5000 || at == 7000 })...)
	// emei never answers.
	s = append(s, every100("emei", "read", 0, 10000, func(int) bool { return true })...)
	got := Analyze(s, ms(10000), []string{"shaolin"})
	if len(got) != 3 {
		t.Fatalf("%d stats: %+v", len(got), got)
	}
	emei, ep, sh := got[0], got[1], got[2]
	if emei.Target != "emei" || emei.Since != -1 || emei.Before != 100 || emei.Requests != 0 {
		t.Errorf("a target that never answered: %+v", emei)
	}
	if ep.Target != "endpoint" || ep.Since != 5 || ep.Before != 50 || ep.Requests != 50 || ep.Failed != 1 {
		t.Errorf("endpoint: %+v", ep)
	}
	// Its one failure at 7.0 s: successes answered at 6.92 and 7.12.
	if math.Abs(ep.MaxGap-0.2) > 1e-9 || math.Abs(ep.GapAt-6.92) > 1e-9 {
		t.Errorf("endpoint gap %v at %v, want 0.2 at 6.92", ep.MaxGap, ep.GapAt)
	}
	// The first failure counted is the one at 7.0 s, not those before 5 s.
	if ep.FirstErr != "failed at 7000 ms" || ep.FirstErrAt != 7 {
		t.Errorf("endpoint's first error %q at %v, want the one at 7 s", ep.FirstErr, ep.FirstErrAt)
	}
	// shaolin: last success answered at 2.92 s, next at 4.52 s.
	if sh.Since != 0 || sh.Requests != 100 || sh.Failed != 15 || math.Abs(sh.MaxGap-1.6) > 1e-9 || math.Abs(sh.GapAt-2.92) > 1e-9 {
		t.Errorf("shaolin: %+v", sh)
	}
}

func TestAnalyzeCountsTheEnds(t *testing.T) {
	t.Parallel()
	// A target there from the start whose first answer is at 1.02 s, and
	// whose last is at 2.02 s of a 5 s window: both ends are gaps.
	s := []Sample{
		{Target: "shaolin", Op: "read", Start: ms(1000), End: ms(1020), OK: true},
		{Target: "shaolin", Op: "read", Start: ms(2000), End: ms(2020), OK: true},
	}
	got := Analyze(s, ms(5000), []string{"shaolin"})
	if g := got[0].MaxGap; math.Abs(g-2.98) > 1e-9 {
		t.Errorf("gap %v, want 2.98 (last answer to the end)", g)
	}
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	s := every100("shaolin", "read", 0, 2000, func(at int) bool { return at >= 1500 })
	s = append(s, every100("emei", "read", 1000, 2000, nil)...)
	got := Timeline(s)
	want := []Bucket{{"emei", "read", 1, 10, 0}, {"shaolin", "read", 0, 10, 0}, {"shaolin", "read", 1, 5, 5}}
	if len(got) != len(want) {
		t.Fatalf("%+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("bucket %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
