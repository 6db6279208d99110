package report

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/haadm/haadm/bench/stats"
)

// object is a JSON object whose keys keep their order: latest.json reads
// in the order, each figure next to its _min and _max.
type object []field

type field struct {
	key   string
	value any
}

func (o *object) set(key string, v any) { *o = append(*o, field{key, v}) }

// summary sets key, key_min and key_max, null when not measured.
func (o *object) summary(key string, s stats.Summary, ok bool) {
	if !ok {
		o.set(key, nil)
		o.set(key+"_min", nil)
		o.set(key+"_max", nil)
		return
	}
	o.set(key, s.Median)
	o.set(key+"_min", s.Min)
	o.set(key+"_max", s.Max)
}

// modes sets key, key_min and key_max as objects keyed by LB mode.
func (o *object) modes(key string, by map[string]stats.Summary) {
	med, lo, hi := object{}, object{}, object{}
	for _, m := range Modes {
		s, ok := by[m]
		if !ok {
			med.set(m, nil)
			lo.set(m, nil)
			hi.set(m, nil)
			continue
		}
		med.set(m, s.Median)
		lo.set(m, s.Min)
		hi.set(m, s.Max)
	}
	o.set(key, med)
	o.set(key+"_min", lo)
	o.set(key+"_max", hi)
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// JSON is latest.json: the keys first, then what explains them
// (phases, steps, goals), then where, what and every run.
func JSON(r Results) ([]byte, error) {
	f := Aggregate(r)
	var o object
	sc := func(key string) {
		s, ok := f.Scalar[key]
		o.summary(key, s, ok)
	}
	sc(PromoteSeconds)
	sc(KubeadmJoinSeconds)
	o.summary(PromoteVsKubeadm, f.PromoteVsKubeadm, f.PromoteVsKubeadmKnown)
	sc(NoopPromoteSeconds)
	sc(DryRunSeconds)
	sc(LBRequests)
	sc(LBRequestsFailed)
	sc(MaxGapSeconds)
	o.modes(FailoverReadSeconds, f.ByMode[FailoverReadSeconds])
	o.modes(FailoverWriteSeconds, f.ByMode[FailoverWriteSeconds])
	o.summary(WritesLost, f.WritesLost, f.WritesLostKnown)
	sc(StatusSeconds)
	sc(StatusDeadNodeSeconds)
	var scale []object
	for _, p := range f.Scale {
		var po object
		po.set("masters", p.Masters)
		if p.Baseline {
			po.set(PromoteSeconds, 0)
			po.set("baseline", "the single master: nothing to promote, 0 by definition, not measured")
		} else {
			po.summary(PromoteSeconds, p.Summary, p.N > 0)
			po.set("runs", p.N)
		}
		scale = append(scale, po)
	}
	o.set("scale", scale)

	sc(StatusProbeTimeout)
	o.modes(WritesLost+"_by_mode", f.ByMode[WritesLost])
	o.modes(WritesLostAll, f.ByMode[WritesLostAll])
	o.modes(WritesAcked, f.ByMode[WritesAcked])
	o.modes(PromoteSeconds+"_by_mode", f.ByMode[PromoteSeconds])
	sc(KubeadmJoinEmei)
	sc(KubeadmJoinWudang)
	if f.ScaleFit != nil {
		o.set("scale_fit", f.ScaleFit)
	} else {
		o.set("scale_fit", nil)
	}
	var phases []object
	for _, p := range f.Phases {
		var po object
		po.set("phase", p.Phase)
		po.summary("seconds", p.Summary, true)
		phases = append(phases, po)
	}
	o.set("promote_phases", phases)
	var steps []object
	for _, s := range f.Steps {
		var so object
		so.set("phase", s.Phase)
		so.set("node", s.Node)
		so.set("what", s.What)
		so.summary("seconds", s.Summary, true)
		steps = append(steps, so)
	}
	o.set("promote_steps", steps)
	o.set("goals", Goals(f))
	o.set("failures", nonNil(f.Failures))
	o.set("bench_runs", r.Runs)
	if r.RunsAsked != r.Runs {
		o.set("bench_runs_asked", r.RunsAsked)
	}
	if r.Only != "" {
		o.set("bench_only", r.Only)
	}
	o.set("started_at", r.Started)
	o.set("finished_at", r.Finished)
	o.set("duration_seconds", r.Finished.Sub(r.Started).Seconds())
	o.set("machine", r.Machine)
	o.set("versions", r.Versions)
	o.set("runs", r.Records)
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rendering latest.json: %w", err)
	}
	return append(b, '\n'), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
