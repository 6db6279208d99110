package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/haadm/haadm/bench/plots"
	"github.com/haadm/haadm/bench/report"
)

// availabilityPNG is the availability plot, drawn from every request.
const availabilityPNG = "availability.png"

// write puts latest.json and latest.md in the results directory, and
// with final the plots too. Each file is written aside and renamed, so a
// reader never sees half of one.
func (b *bench) write(final bool) error {
	var ps []report.Plot
	if final {
		var err error
		if ps, err = b.plots(); err != nil {
			b.say("plots: %v", err)
		}
	}
	js, err := report.JSON(b.results)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(b.cfg.out, "latest.json"), js); err != nil {
		return err
	}
	return writeFile(filepath.Join(b.cfg.out, "latest.md"), []byte(report.Markdown(b.results, ps)))
}

func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// plots draws what there is data for; a plot that fails is said and
// skipped, the others still drawn.
func (b *bench) plots() ([]report.Plot, error) {
	f := report.Aggregate(b.results)
	var out []report.Plot
	var errs []string
	add := func(file, title string, png []byte, err error) {
		if err == nil {
			err = writeFile(filepath.Join(b.cfg.out, file), png)
		}
		if err != nil {
			errs = append(errs, file+": "+err.Error())
			return
		}
		out = append(out, report.Plot{File: file, Title: title})
	}

	// promote vs kubeadm, run by run.
	promote, kubeadm := map[int]float64{}, map[int]float64{}
	var idx []int
	for _, r := range b.results.Records {
		var v float64
		var ok bool
		switch r.Scenario {
		case report.ScenarioPromote:
			if v, ok = r.Figures[report.PromoteSeconds]; ok {
				promote[r.Index] = v
			}
		case report.ScenarioKubeadm:
			if v, ok = r.Figures[report.KubeadmJoinSeconds]; ok {
				kubeadm[r.Index] = v
			}
		}
		if ok && !slices.Contains(idx, r.Index) {
			idx = append(idx, r.Index)
		}
	}
	if len(idx) > 0 {
		slices.Sort(idx)
		var labels []string
		var pv, kv []float64
		for _, i := range idx {
			labels = append(labels, fmt.Sprintf("run %d", i))
			pv, kv = append(pv, promote[i]), append(kv, kubeadm[i])
		}
		png, err := plots.Bars("haadm promote vs kubeadm join --control-plane (emei, wudang); 0 = not measured", "seconds", labels,
			[]plots.Series{{Name: "haadm promote", Values: pv}, {Name: "kubeadm join x2", Values: kv}}, false)
		add("promote_vs_kubeadm.png", "promote vs kubeadm join, per run", png, err)
	}

	if len(f.Phases) > 0 {
		var labels []string
		var s plots.Series
		for _, p := range f.Phases {
			labels = append(labels, p.Phase)
			s.Values, s.Lo, s.Hi = append(s.Values, p.Median), append(s.Lo, p.Min), append(s.Hi, p.Max)
		}
		png, err := plots.Bars("Where promote's time goes (median, min-max)", "seconds", labels, []plots.Series{s}, true)
		add("promote_phases.png", "promote's phases", png, err)
	}

	if len(b.timeline) == 0 && b.keepAvailability {
		out = append(out, report.Plot{File: availabilityPNG, Title: "availability during promote (drawn by the bench itself)"})
	}
	if len(b.timeline) > 0 {
		order := []string{first, "emei", "wudang", "endpoint"}
		var rows []plots.Row
		for _, t := range order {
			for _, op := range []string{"read", "write"} {
				row := plots.Row{Label: t + " " + op}
				for _, s := range b.timeline {
					if s.Target == t && s.Op == op {
						row.At, row.OK = append(row.At, s.Start.Seconds()), append(row.OK, s.OK)
					}
				}
				if len(row.At) > 0 {
					rows = append(rows, row)
				}
			}
		}
		var ms []plots.Mark
		for _, m := range b.timelineMarks {
			ms = append(ms, plots.Mark{At: m.at.Seconds(), Label: m.phase})
		}
		png, err := plots.Timeline(fmt.Sprintf("API requests during promote run %d (every 100 ms per target and operation)", b.timelineRun), rows, ms, b.timelineEnd.Seconds())
		add(availabilityPNG, fmt.Sprintf("availability during promote run %d", b.timelineRun), png, err)
	}

	if len(f.Scale) > 1 {
		var pts []plots.Point
		for _, p := range f.Scale {
			if p.Baseline || p.N > 0 {
				pts = append(pts, plots.Point{X: float64(p.Masters), Y: p.Median, Lo: p.Min, Hi: p.Max})
			}
		}
		var fit *[2]float64
		if f.ScaleFit != nil {
			fit = &[2]float64{f.ScaleFit.Intercept, f.ScaleFit.Slope}
		}
		png, err := plots.Line("promote wall time by masters (1 = the single master, not a promote)", "masters", "seconds", pts, fit)
		add("scale.png", "scale: promote to 2..5 masters", png, err)
	}

	var modes []string
	var rd, wr plots.Series
	rd.Name, wr.Name = "first read", "first write"
	for _, m := range report.Modes {
		r, rok := f.ByMode[report.FailoverReadSeconds][m]
		w, wok := f.ByMode[report.FailoverWriteSeconds][m]
		if !rok && !wok {
			continue
		}
		modes = append(modes, m)
		rd.Values, wr.Values = append(rd.Values, r.Median), append(wr.Values, w.Median)
	}
	if len(modes) > 0 {
		png, err := plots.Bars("Failover: shaolin cut off, first success through the endpoint (median)", "seconds", modes, []plots.Series{rd, wr}, false)
		add("failover.png", "failover per LB mode", png, err)
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}
