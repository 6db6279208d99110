package report

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/haadm/haadm/bench/stats"
)

// Keys of the figures, as latest.json names them (issue 10).
const (
	PromoteSeconds        = "promote_seconds"
	KubeadmJoinSeconds    = "kubeadm_join_seconds"
	PromoteVsKubeadm      = "promote_vs_kubeadm"
	NoopPromoteSeconds    = "noop_promote_seconds"
	DryRunSeconds         = "dry_run_seconds"
	LBRequests            = "lb_requests"
	LBRequestsFailed      = "lb_requests_failed"
	MaxGapSeconds         = "max_gap_seconds"
	FailoverReadSeconds   = "failover_read_seconds"
	FailoverWriteSeconds  = "failover_write_seconds"
	WritesLost            = "writes_lost"
	StatusSeconds         = "status_seconds"
	StatusDeadNodeSeconds = "status_dead_node_seconds"
	// StatusProbeTimeout is the --probe-timeout status_dead_node_seconds
	// ran with: its goal is this plus one second.
	StatusProbeTimeout = "status_probe_timeout_seconds"
	// Beyond the keys, for context.
	KubeadmJoinEmei   = "kubeadm_join_emei_seconds"
	KubeadmJoinWudang = "kubeadm_join_wudang_seconds"
	WritesAcked       = "writes_acked"
	WritesLostAll     = "writes_lost_after_cut" // acknowledged after the cut, not read back
)

// scalar are the figures of one scenario, in the order the results list them.
var scalar = []struct{ key, scenario string }{
	{PromoteSeconds, ScenarioPromote},
	{KubeadmJoinSeconds, ScenarioKubeadm},
	{NoopPromoteSeconds, ScenarioPromote},
	{DryRunSeconds, ScenarioPromote},
	{LBRequests, ScenarioPromote},
	{LBRequestsFailed, ScenarioPromote},
	{MaxGapSeconds, ScenarioPromote},
	{StatusSeconds, ScenarioPromote},
	{StatusDeadNodeSeconds, ScenarioPromote},
	{StatusProbeTimeout, ScenarioPromote},
	{KubeadmJoinEmei, ScenarioKubeadm},
	{KubeadmJoinWudang, ScenarioKubeadm},
}

// byMode are the figures measured in every LB mode: from the promote
// scenario (external) and the failover scenario (the others).
var byMode = []string{FailoverReadSeconds, FailoverWriteSeconds, WritesLost, WritesLostAll, WritesAcked, PromoteSeconds}

// Modes are the LB layouts in the order the results show them.
var Modes = []string{"external", "node-local", "vip"}

// Figures are the results reckoned from the runs.
type Figures struct {
	Scalar map[string]stats.Summary
	// ByMode[key][mode].
	ByMode map[string]map[string]stats.Summary
	// WritesLost over every failover of every mode.
	WritesLost      stats.Summary
	WritesLostKnown bool
	// PromoteVsKubeadm pairs run i's promote with run i's joins.
	PromoteVsKubeadm      stats.Summary
	PromoteVsKubeadmKnown bool
	Scale                 []ScalePoint
	// ScaleFit is the line through the scale points of 2 masters and
	// more (the points of real promotes); nil with fewer than two.
	ScaleFit *stats.Fit
	Phases   []PhaseSummary
	Steps    []StepSummary
	// Failures are every run's errors, "scenario run N: error".
	Failures []string
}

// ScalePoint is the promote to Masters masters.
type ScalePoint struct {
	Masters int
	stats.Summary
	// Baseline is the single master itself: nothing to promote, 0 s by
	// definition, not a measurement.
	Baseline bool
}

// PhaseSummary is one phase of the promote scenario's promotes.
type PhaseSummary struct {
	Phase string
	stats.Summary
}

// StepSummary is one step of those promotes.
type StepSummary struct {
	Phase, Node, What string
	stats.Summary
}

func (r Results) values(keep func(Run) bool, key string) []float64 {
	var out []float64
	for _, run := range r.Records {
		if !keep(run) {
			continue
		}
		if v, ok := run.Figures[key]; ok {
			out = append(out, v)
		}
	}
	return out
}

// Aggregate reckons the figures from the runs. A figure no run measured
// is absent; the runs' errors say why.
func Aggregate(r Results) Figures {
	f := Figures{Scalar: map[string]stats.Summary{}, ByMode: map[string]map[string]stats.Summary{}}
	for _, s := range scalar {
		if sum, ok := stats.Summarize(r.values(func(x Run) bool { return x.Scenario == s.scenario }, s.key)); ok {
			f.Scalar[s.key] = sum
		}
	}
	for _, key := range byMode {
		for _, mode := range Modes {
			keep := func(x Run) bool {
				return x.Mode == mode && (x.Scenario == ScenarioPromote || x.Scenario == ScenarioFailover)
			}
			if sum, ok := stats.Summarize(r.values(keep, key)); ok {
				if f.ByMode[key] == nil {
					f.ByMode[key] = map[string]stats.Summary{}
				}
				f.ByMode[key][mode] = sum
			}
		}
	}
	f.WritesLost, f.WritesLostKnown = stats.Summarize(r.values(func(x Run) bool {
		return x.Scenario == ScenarioPromote || x.Scenario == ScenarioFailover
	}, WritesLost))
	f.PromoteVsKubeadm, f.PromoteVsKubeadmKnown = stats.Summarize(ratios(r))
	f.Scale, f.ScaleFit = scale(r)
	f.Phases, f.Steps = phases(r)
	for _, run := range r.Records {
		for _, e := range run.Errors {
			f.Failures = append(f.Failures, runName(run)+": "+e)
		}
	}
	return f
}

// runName names a run in failures and tables: "promote run 2",
// "failover vip run 1", "scale 4 masters run 3".
func runName(run Run) string {
	s := run.Scenario
	switch run.Scenario {
	case ScenarioFailover:
		s += " " + run.Mode
	case ScenarioScale:
		s += " " + itoa(run.Masters) + " masters"
	}
	return s + " run " + itoa(run.Index)
}

func itoa(i int) string { return strconv.Itoa(i) }

// ratios is promote_seconds / kubeadm_join_seconds of the runs with the
// same index: one pair per run, both on labs of the same size.
func ratios(r Results) []float64 {
	promote, kubeadm := map[int]float64{}, map[int]float64{}
	for _, run := range r.Records {
		switch run.Scenario {
		case ScenarioPromote:
			if v, ok := run.Figures[PromoteSeconds]; ok {
				promote[run.Index] = v
			}
		case ScenarioKubeadm:
			if v, ok := run.Figures[KubeadmJoinSeconds]; ok && v > 0 {
				kubeadm[run.Index] = v
			}
		}
	}
	var out []float64
	for i, p := range promote {
		if k, ok := kubeadm[i]; ok {
			out = append(out, p/k)
		}
	}
	slices.Sort(out)
	return out
}

func scale(r Results) ([]ScalePoint, *stats.Fit) {
	by := map[int][]float64{}
	for _, run := range r.Records {
		if run.Scenario != ScenarioScale {
			continue
		}
		if _, ok := by[run.Masters]; !ok {
			by[run.Masters] = nil
		}
		if v, ok := run.Figures[PromoteSeconds]; ok {
			by[run.Masters] = append(by[run.Masters], v)
		}
	}
	if len(by) == 0 {
		return nil, nil
	}
	pts := []ScalePoint{{Masters: 1, Baseline: true}}
	var xs, ys []float64
	for m, vs := range by {
		sum, ok := stats.Summarize(vs)
		if !ok {
			pts = append(pts, ScalePoint{Masters: m})
			continue
		}
		pts = append(pts, ScalePoint{Masters: m, Summary: sum})
	}
	slices.SortFunc(pts, func(a, b ScalePoint) int { return a.Masters - b.Masters })
	for _, p := range pts {
		if !p.Baseline && p.N > 0 {
			xs, ys = append(xs, float64(p.Masters)), append(ys, p.Median)
		}
	}
	fit, err := stats.LinearFit(xs, ys)
	if err != nil {
		return pts, nil
	}
	return pts, &fit
}

// phases are the promote scenario's phases and steps over its runs, in
// the order of the first run that has them.
func phases(r Results) ([]PhaseSummary, []StepSummary) {
	var order []string
	ph := map[string][]float64{}
	type sk struct{ phase, node, what string }
	var sorder []sk
	st := map[sk][]float64{}
	for _, run := range r.Records {
		if run.Scenario != ScenarioPromote {
			continue
		}
		for _, p := range run.Phases {
			if _, ok := ph[p.Phase]; !ok {
				order = append(order, p.Phase)
			}
			ph[p.Phase] = append(ph[p.Phase], p.Seconds)
		}
		for _, s := range run.Steps {
			k := sk{s.Phase, s.Node, s.What}
			if _, ok := st[k]; !ok {
				sorder = append(sorder, k)
			}
			st[k] = append(st[k], s.Seconds)
		}
	}
	// haadm's order, not the order phases first log in: lb's first line
	// is its layout note at the very start.
	slices.SortStableFunc(order, func(a, b string) int { return cmp.Compare(phaseRank(a), phaseRank(b)) })
	var ps []PhaseSummary
	for _, p := range order {
		sum, _ := stats.Summarize(ph[p])
		ps = append(ps, PhaseSummary{Phase: p, Summary: sum})
	}
	var ss []StepSummary
	for _, k := range sorder {
		sum, _ := stats.Summarize(st[k])
		ss = append(ss, StepSummary{Phase: k.phase, Node: k.node, What: k.what, Summary: sum})
	}
	// Steps by phase order, then longest first: the table reads as where
	// each phase's time went.
	rank := map[string]int{}
	for i, p := range order {
		rank[p] = i
	}
	slices.SortStableFunc(ss, func(a, b StepSummary) int {
		if c := cmp.Compare(rank[a.Phase], rank[b.Phase]); c != 0 {
			return c
		}
		return cmp.Compare(b.Median, a.Median)
	})
	return ps, ss
}

// phaseOrder is the order a promote goes through (phases/runner.go), with
// the breakdown's own startup, plan and exit in their places.
var phaseOrder = []string{"startup", "lock", "connect", "preflight", "plan", "backup", "etc-hosts", "certs", "host-files",
	"etcd", "control-plane", "mark", "lb", "kubelet", "workers", "cluster-config", "promote", "ssh", "exit"}

// phaseRank places a phase haadm has not told the bench about just
// before the end.
func phaseRank(p string) int {
	if i := slices.Index(phaseOrder, p); i >= 0 {
		return i
	}
	return len(phaseOrder) - 3
}
