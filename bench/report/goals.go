package report

import (
	"fmt"
	"strings"

	"github.com/haadm/haadm/bench/stats"
)

// Goal is one of issue 10's goals, judged. Times are judged on their
// median; counts that must be zero (failed requests, lost writes) on
// their maximum, so one bad run fails them.
type Goal struct {
	Key      string `json:"key"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	// Pass is nil when the figure was not measured (a failed or skipped
	// measurement is no pass).
	Pass *bool `json:"pass"`
}

// ScaleR2 is how straight the scale points must be to count as growing
// linearly per master.
const ScaleR2 = 0.9

// Goals judges every goal of the issue.
func Goals(f Figures) []Goal {
	var g []Goal
	atMost := func(key, goal string, s stats.Summary, ok bool, limit float64) {
		if !ok {
			g = append(g, Goal{Key: key, Goal: goal, Measured: "not measured"})
			return
		}
		pass := s.Median <= limit
		g = append(g, Goal{Key: key, Goal: goal, Measured: fmt.Sprintf("%s (min %s, max %s)", num(key, s.Median), num(key, s.Min), num(key, s.Max)), Pass: &pass})
	}
	zero := func(key, goal string, s stats.Summary, ok bool) {
		if !ok {
			g = append(g, Goal{Key: key, Goal: goal, Measured: "not measured"})
			return
		}
		pass := s.Max == 0
		g = append(g, Goal{Key: key, Goal: goal, Measured: fmt.Sprintf("max %s over %d run(s)", num(key, s.Max), s.N), Pass: &pass})
	}
	atMost(PromoteVsKubeadm, "promote_vs_kubeadm <= 0.8", f.PromoteVsKubeadm, f.PromoteVsKubeadmKnown, 0.8)
	s, ok := f.Scalar[LBRequestsFailed]
	zero(LBRequestsFailed, "lb_requests_failed = 0", s, ok)
	s, ok = f.Scalar[MaxGapSeconds]
	atMost(MaxGapSeconds, "max_gap_seconds <= 1", s, ok, 1)
	for _, key := range []string{FailoverReadSeconds, FailoverWriteSeconds} {
		for _, mode := range Modes {
			s, ok := f.ByMode[key][mode]
			atMost(key+"."+mode, key+" <= 2 ("+mode+")", s, ok, 2)
		}
	}
	zero(WritesLost, "writes_lost = 0 (every mode)", f.WritesLost, f.WritesLostKnown)
	s, ok = f.Scalar[NoopPromoteSeconds]
	atMost(NoopPromoteSeconds, "noop_promote_seconds <= 2", s, ok, 2)
	s, ok = f.Scalar[StatusSeconds]
	atMost(StatusSeconds, "status_seconds <= 0.5", s, ok, 0.5)
	pt, ptOK := f.Scalar[StatusProbeTimeout]
	s, ok = f.Scalar[StatusDeadNodeSeconds]
	if ptOK {
		atMost(StatusDeadNodeSeconds, fmt.Sprintf("status_dead_node_seconds <= probe timeout + 1 (%gs)", pt.Median+1), s, ok, pt.Median+1)
	} else {
		atMost(StatusDeadNodeSeconds, "status_dead_node_seconds <= probe timeout + 1", s, false, 0)
	}
	g = append(g, scaleGoal(f))
	return g
}

func scaleGoal(f Figures) Goal {
	goal := fmt.Sprintf("scale grows linearly per master (R² >= %g over 2..5 masters)", ScaleR2)
	if f.ScaleFit == nil {
		return Goal{Key: "scale", Goal: goal, Measured: "not measured"}
	}
	var missing []string
	for _, p := range f.Scale {
		if !p.Baseline && p.N == 0 {
			missing = append(missing, fmt.Sprint(p.Masters))
		}
	}
	m := fmt.Sprintf("%.1f s per master, R² %.3f", f.ScaleFit.Slope, f.ScaleFit.R2)
	pass := f.ScaleFit.R2 >= ScaleR2 && f.ScaleFit.Slope > 0 && len(missing) == 0
	if len(missing) > 0 {
		m += "; no figure for " + strings.Join(missing, ", ") + " masters"
	}
	return Goal{Key: "scale", Goal: goal, Measured: m, Pass: &pass}
}

// counts are the figures that are numbers of things, not seconds.
var counts = map[string]bool{LBRequests: true, LBRequestsFailed: true, WritesLost: true, WritesLostAll: true, WritesAcked: true}

func isCount(key string) bool {
	k, _, _ := strings.Cut(key, ".")
	return counts[k]
}

// num renders a figure: counts as integers, ratios with two decimals,
// seconds with two decimals and "s".
func num(key string, v float64) string {
	switch {
	case isCount(key):
		if v == float64(int64(v)) {
			return fmt.Sprintf("%d", int64(v))
		}
		return fmt.Sprintf("%.1f", v)
	case key == PromoteVsKubeadm:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.2fs", v)
}
