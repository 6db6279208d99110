package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/haadm/haadm/bench/phaselog"
)

// sample is three runs of every scenario, with figures made for the test
// (not measurements): promote 60, 50, 70 s; joins 100, 80, 90 s.
func sample() Results {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := Results{Started: t0, Finished: t0.Add(time.Hour), Runs: 3,
		Machine:  Machine{CPUs: 2, MemoryBytes: 8 << 30, Kernel: "6.1", GoVersion: "go1.26"},
		Versions: Versions{Haadm: "v0.1", Kubernetes: "v1.36.3", Etcd: "v3.6.8"}}
	promote := []float64{60, 50, 70}
	kubeadm := []float64{100, 80, 90}
	for i := range 3 {
		r.Records = append(r.Records,
			Run{Scenario: ScenarioPromote, Index: i + 1, Mode: "external", LabNodes: 3, Figures: map[string]float64{
				PromoteSeconds: promote[i], DryRunSeconds: 3, NoopPromoteSeconds: 1.5, StatusSeconds: 0.4, StatusDeadNodeSeconds: 2.5,
				StatusProbeTimeout: 2, LBRequests: 400, LBRequestsFailed: float64(i % 2), MaxGapSeconds: 0.3,
				FailoverReadSeconds: 1, FailoverWriteSeconds: 1.2, WritesLost: 0},
				Phases: []phaselog.PhaseTime{{Phase: "certs", Seconds: 1}, {Phase: "etcd", Seconds: 30 + float64(i)}},
				Steps:  []phaselog.Step{{Phase: "etcd", Node: "wudang", What: "etcd member started", Seconds: 16}}},
			Run{Scenario: ScenarioKubeadm, Index: i + 1, LabNodes: 3, Figures: map[string]float64{KubeadmJoinSeconds: kubeadm[i]}},
			Run{Scenario: ScenarioFailover, Index: i + 1, Mode: "vip", LabNodes: 3, Figures: map[string]float64{
				PromoteSeconds: 80, FailoverReadSeconds: 3, FailoverWriteSeconds: 3, WritesLost: 0}},
		)
		for m := 2; m <= 5; m++ {
			r.Records = append(r.Records, Run{Scenario: ScenarioScale, Index: i + 1, Masters: m, LabNodes: 5,
				Figures: map[string]float64{PromoteSeconds: 10 + 20*float64(m)}})
		}
	}
	// node-local's failover failed in one run: it has no figure.
	r.Records = append(r.Records, Run{Scenario: ScenarioFailover, Index: 1, Mode: "node-local", LabNodes: 3,
		Figures: map[string]float64{PromoteSeconds: 75}, Errors: []string{"failover: no read within 2m0s"}})
	return r
}

func TestAggregate(t *testing.T) {
	t.Parallel()
	f := Aggregate(sample())
	if s := f.Scalar[PromoteSeconds]; s.Median != 60 || s.Min != 50 || s.Max != 70 || s.N != 3 {
		t.Errorf("promote_seconds %+v: the vip runs' promotes must not count", s)
	}
	// Ratios per run: 0.6, 0.625, 0.778.
	if s := f.PromoteVsKubeadm; !f.PromoteVsKubeadmKnown || s.Median != 0.625 || s.Min != 0.6 {
		t.Errorf("promote_vs_kubeadm %+v", s)
	}
	if s := f.ByMode[FailoverReadSeconds]["vip"]; s.Median != 3 || s.N != 3 {
		t.Errorf("vip read %+v", s)
	}
	if _, ok := f.ByMode[FailoverReadSeconds]["node-local"]; ok {
		t.Error("a failed failover has a figure")
	}
	if len(f.Scale) != 5 || !f.Scale[0].Baseline || f.Scale[4].Median != 110 || f.ScaleFit == nil || f.ScaleFit.Slope != 20 {
		t.Errorf("scale %+v fit %+v", f.Scale, f.ScaleFit)
	}
	if len(f.Phases) != 2 || f.Phases[1].Phase != "etcd" || f.Phases[1].Median != 31 {
		t.Errorf("phases %+v", f.Phases)
	}
	if len(f.Failures) != 1 || !strings.HasPrefix(f.Failures[0], "failover node-local run 1: ") {
		t.Errorf("failures %v", f.Failures)
	}
}

func TestGoals(t *testing.T) {
	t.Parallel()
	got := map[string]*bool{}
	for _, g := range Goals(Aggregate(sample())) {
		got[g.Key] = g.Pass
	}
	want := map[string]any{
		PromoteVsKubeadm: true, LBRequestsFailed: false, MaxGapSeconds: true,
		FailoverReadSeconds + ".external": true, FailoverReadSeconds + ".vip": false, FailoverReadSeconds + ".node-local": nil,
		WritesLost: true, NoopPromoteSeconds: true, StatusSeconds: true, StatusDeadNodeSeconds: true, "scale": true,
	}
	for k, w := range want {
		p, ok := got[k]
		if !ok {
			t.Errorf("no goal %s", k)
			continue
		}
		switch w {
		case nil:
			if p != nil {
				t.Errorf("%s: judged %v, want not measured", k, *p)
			}
		default:
			if p == nil || *p != w.(bool) {
				t.Errorf("%s: %v, want %v", k, p, w)
			}
		}
	}
}

func TestJSONKeys(t *testing.T) {
	t.Parallel()
	b, err := JSON(sample())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{PromoteSeconds, KubeadmJoinSeconds, PromoteVsKubeadm, NoopPromoteSeconds, DryRunSeconds, LBRequests,
		LBRequestsFailed, MaxGapSeconds, WritesLost, StatusSeconds, StatusDeadNodeSeconds} {
		for _, suffix := range []string{"", "_min", "_max"} {
			if _, ok := m[k+suffix]; !ok {
				t.Errorf("latest.json lacks %s%s", k, suffix)
			}
		}
	}
	if m[PromoteSeconds] != 60.0 || m[PromoteSeconds+"_min"] != 50.0 {
		t.Errorf("promote_seconds %v min %v", m[PromoteSeconds], m[PromoteSeconds+"_min"])
	}
	read, ok := m[FailoverReadSeconds].(map[string]any)
	if !ok || read["vip"] != 3.0 || read["node-local"] != nil {
		t.Errorf("failover_read_seconds %v", m[FailoverReadSeconds])
	}
	scale, ok := m["scale"].([]any)
	if !ok || len(scale) != 5 || scale[1].(map[string]any)["masters"] != 2.0 || scale[1].(map[string]any)[PromoteSeconds] != 50.0 {
		t.Errorf("scale %v", m["scale"])
	}
	// The order: promote_seconds first, each beside its min and max.
	s := string(b)
	if i, j, k := strings.Index(s, `"promote_seconds"`), strings.Index(s, `"promote_seconds_min"`), strings.Index(s, `"kubeadm_join_seconds"`); !(i < j && j < k) || i > 10 {
		t.Errorf("key order: promote_seconds at %d, its min at %d, kubeadm_join_seconds at %d", i, j, k)
	}
}

func TestMarkdown(t *testing.T) {
	t.Parallel()
	md := Markdown(sample(), []Plot{{File: "scale.png", Title: "Scale"}})
	for _, want := range []string{
		"| promote_vs_kubeadm <= 0.8 | 0.62 (min 0.60, max 0.78) | pass |",
		"| lb_requests_failed = 0 | max 1 over 3 run(s) | **FAIL** |",
		"| failover_read_seconds <= 2 (node-local) | not measured | not measured |",
		"| etcd | wudang | etcd member started | 16.00s |",
		"| 1 | 0 (the single master",
		"![Scale](scale.png)",
		"- failover node-local run 1: failover: no read within 2m0s",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("latest.md lacks %q", want)
		}
	}
}
