// Package avail judges the availability probe run during a promote: from
// every request's start, end and outcome, per endpoint and operation, how
// many requests were counted, how many failed, and the longest stretch
// without a success. Pure: the probe itself lives in the bench command.
package avail

import (
	"slices"
	"time"
)

// Sample is one probe request. Times are since the probe started.
type Sample struct {
	Target string        `json:"target"` // "shaolin", "emei", "endpoint"...
	Op     string        `json:"op"`     // "read" or "write"
	Start  time.Duration `json:"start_ns"`
	End    time.Duration `json:"end_ns"`
	OK     bool          `json:"ok"`
	Err    string        `json:"err,omitempty"`
}

// Stats is one target and operation over the probe's window.
type Stats struct {
	Target string `json:"target"`
	Op     string `json:"op"`
	// Since is when the target counts from: 0 for a target that existed
	// when the probe started, else the start of its first success (a new
	// apiserver, the load balancer). -1: it never answered.
	Since float64 `json:"since_seconds"`
	// Requests and Failed count the requests started from Since on;
	// Before counts those before (the target was not there yet).
	Requests int `json:"requests"`
	Failed   int `json:"failed"`
	Before   int `json:"before"`
	// MaxGap is the longest time without a successful answer within the
	// window (from Since to the probe's end), and GapAt where it began.
	MaxGap float64 `json:"max_gap_seconds"`
	GapAt  float64 `json:"max_gap_at_seconds"`
	// FirstErr is the error of the first failed request from Since on,
	// and FirstErrAt when that request started: what a failure was, not
	// only when.
	FirstErr   string  `json:"first_error,omitempty"`
	FirstErrAt float64 `json:"first_error_at_seconds,omitempty"`
}

// Analyze judges samples over a probe that ran for window. fromStart
// names the targets that existed when the probe began: they count from
// 0, their failures before a first success included. The result is
// sorted by target, then op.
func Analyze(samples []Sample, window time.Duration, fromStart []string) []Stats {
	type key struct{ target, op string }
	by := map[key][]Sample{}
	for _, s := range samples {
		k := key{s.Target, s.Op}
		by[k] = append(by[k], s)
	}
	var out []Stats
	for k, ss := range by {
		slices.SortFunc(ss, func(a, b Sample) int { return int(a.Start - b.Start) })
		st := Stats{Target: k.target, Op: k.op, Since: -1}
		since := time.Duration(-1)
		if slices.Contains(fromStart, k.target) {
			since = 0
		} else {
			for _, s := range ss {
				if s.OK {
					since = s.Start
					break
				}
			}
		}
		if since < 0 {
			st.Before = len(ss)
			out = append(out, st)
			continue
		}
		st.Since = since.Seconds()
		// Successes by when their answer came, starting the window at
		// since and closing it at the probe's end.
		var oks []time.Duration
		for _, s := range ss {
			if s.Start < since {
				st.Before++
				continue
			}
			st.Requests++
			if !s.OK {
				if st.Failed == 0 {
					st.FirstErr, st.FirstErrAt = s.Err, s.Start.Seconds()
				}
				st.Failed++
				continue
			}
			oks = append(oks, min(s.End, window))
		}
		slices.Sort(oks)
		prev := since
		for _, t := range append(oks, window) {
			if g := t - prev; g > 0 && g.Seconds() > st.MaxGap {
				st.MaxGap, st.GapAt = g.Seconds(), prev.Seconds()
			}
			prev = max(prev, t)
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Stats) int {
		if a.Target != b.Target {
			return cmp(a.Target, b.Target)
		}
		return cmp(a.Op, b.Op)
	})
	return out
}

// Bucket is a target's and operation's requests started in one second of
// the probe: the timeline the results keep (every request would be too
// many to keep for every run).
type Bucket struct {
	Target string `json:"target"`
	Op     string `json:"op"`
	Second int    `json:"second"`
	OK     int    `json:"ok"`
	Failed int    `json:"failed"`
}

// Timeline counts samples per target, operation and second of start,
// sorted by target, op and second.
func Timeline(samples []Sample) []Bucket {
	type key struct {
		target, op string
		sec        int
	}
	m := map[key]*Bucket{}
	for _, s := range samples {
		k := key{s.Target, s.Op, int(s.Start / time.Second)}
		b := m[k]
		if b == nil {
			b = &Bucket{Target: s.Target, Op: s.Op, Second: k.sec}
			m[k] = b
		}
		if s.OK {
			b.OK++
		} else {
			b.Failed++
		}
	}
	out := make([]Bucket, 0, len(m))
	for _, b := range m {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Bucket) int {
		switch {
		case a.Target != b.Target:
			return cmp(a.Target, b.Target)
		case a.Op != b.Op:
			return cmp(a.Op, b.Op)
		default:
			return a.Second - b.Second
		}
	})
	return out
}

func cmp(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
