package report

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/haadm/haadm/bench/stats"
)

// Plot is a PNG next to latest.md and what it shows.
type Plot struct {
	File, Title string
}

// Markdown is latest.md: the goals judged, the figures, where promote's
// time goes, failover per mode, scale, the plots and every run.
func Markdown(r Results, plots []Plot) string {
	f := Aggregate(r)
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# haadm benchmark (`make bench`)\n\n")
	w("Measured %s to %s (%s) on %d CPU(s) (%s), %.1f GiB of memory, Linux %s, %s.\n",
		r.Started.UTC().Format("2006-01-02 15:04 UTC"), r.Finished.UTC().Format("15:04 UTC"), r.Finished.Sub(r.Started).Round(time.Second),
		r.Machine.CPUs, orDash(r.Machine.CPUModel), float64(r.Machine.MemoryBytes)/(1<<30), orDash(r.Machine.Kernel), orDash(r.Machine.GoVersion))
	w("haadm %s, Kubernetes %s, etcd %s. BENCH_RUNS=%d: every figure is the median of its runs, each on a fresh lab, with the minimum and maximum beside it.\n",
		orDash(r.Versions.Haadm), orDash(r.Versions.Kubernetes), orDash(r.Versions.Etcd), r.Runs)
	if r.RunsAsked > r.Runs {
		w("The bench was stopped after %d of its BENCH_RUNS=%d runs (SIGUSR1).\n", r.Runs, r.RunsAsked)
	}
	if r.Only != "" {
		w("Only %s was measured (BENCH_ONLY): the rest is missing on purpose.\n", r.Only)
	}
	w("Raw numbers of every run: [latest.json](latest.json).\n\n")

	w("## Goals (issue 10)\n\nTimes are judged on their median, counts that must be zero on their maximum (one bad run fails them).\n\n")
	w("| goal | measured | |\n|---|---|---|\n")
	for _, g := range Goals(f) {
		verdict := "not measured"
		if g.Pass != nil {
			verdict = map[bool]string{true: "pass", false: "**FAIL**"}[*g.Pass]
		}
		w("| %s | %s | %s |\n", g.Goal, g.Measured, verdict)
	}

	w("\n## Figures\n\n| key | median | min | max | runs |\n|---|---|---|---|---|\n")
	row := func(key string, s stats.Summary, ok bool) {
		if !ok {
			w("| %s | not measured | | | 0 |\n", key)
			return
		}
		w("| %s | %s | %s | %s | %d |\n", key, num(key, s.Median), num(key, s.Min), num(key, s.Max), s.N)
	}
	for _, s := range scalar {
		if s.key == KubeadmJoinSeconds {
			sum, ok := f.Scalar[s.key]
			row(s.key, sum, ok)
			row(PromoteVsKubeadm, f.PromoteVsKubeadm, f.PromoteVsKubeadmKnown)
			continue
		}
		sum, ok := f.Scalar[s.key]
		row(s.key, sum, ok)
	}
	row(WritesLost, f.WritesLost, f.WritesLostKnown)

	w("\n## Failover and promote per LB mode\n\nshaolin cut off the network (`ip -n haadm-shaolin link set eth0 down`), time to the first success through the endpoint, an attempt every 100 ms on a fresh connection.\n\n")
	w("| mode | failover read | failover write | writes lost (acked before the cut) | lost, acked after the cut | writes acked | promote |\n|---|---|---|---|---|---|---|\n")
	for _, m := range Modes {
		cell := func(key string) string {
			s, ok := f.ByMode[key][m]
			if !ok {
				return "not measured"
			}
			if s.N == 1 {
				return num(key, s.Median)
			}
			return fmt.Sprintf("%s (%s–%s)", num(key, s.Median), num(key, s.Min), num(key, s.Max))
		}
		w("| %s | %s | %s | %s | %s | %s | %s |\n", m, cell(FailoverReadSeconds), cell(FailoverWriteSeconds), cell(WritesLost), cell(WritesLostAll), cell(WritesAcked), cell(PromoteSeconds))
	}

	w("\n## Where promote's time goes\n\nFrom haadm's log (`--log-file`) of the promote scenario's promotes: the time between two log lines goes to the phase of the later one; `plan` is every phase's planning, `startup` the time before the first line.\n\n")
	if len(f.Phases) == 0 {
		w("No promote log was read.\n")
	} else {
		var total float64
		for _, p := range f.Phases {
			total += p.Median
		}
		w("| phase | median | min | max | share |\n|---|---|---|---|---|\n")
		for _, p := range f.Phases {
			w("| %s | %.2fs | %.2fs | %.2fs | %.0f%% |\n", p.Phase, p.Median, p.Min, p.Max, 100*p.Median/total)
		}
		w("\nSteps of 0.5 s or more (median), from each step's start line to its end line:\n\n| phase | node | step | median | min | max |\n|---|---|---|---|---|---|\n")
		for _, s := range f.Steps {
			if s.Median < 0.5 {
				continue
			}
			w("| %s | %s | %s | %.2fs | %.2fs | %.2fs |\n", s.Phase, orDash(s.Node), mdEscape(s.What), s.Median, s.Min, s.Max)
		}
	}

	w("\n## Scale\n\nA lab of 5 nodes promoted to N masters (`promote --nodes` of N-1 workers), a fresh lab for each point.\n\n")
	if len(f.Scale) == 0 {
		w("Not measured.\n")
	} else {
		w("| masters | promote median | min | max | runs |\n|---|---|---|---|---|\n")
		for _, p := range f.Scale {
			switch {
			case p.Baseline:
				w("| 1 | 0 (the single master: nothing to promote, not measured) | | | |\n")
			case p.N == 0:
				w("| %d | failed | | | 0 |\n", p.Masters)
			default:
				w("| %d | %.2fs | %.2fs | %.2fs | %d |\n", p.Masters, p.Median, p.Min, p.Max, p.N)
			}
		}
		if f.ScaleFit != nil {
			w("\nLeast-squares line over 2 masters and more: %.2f s + %.2f s per master, R² %.3f.\n", f.ScaleFit.Intercept, f.ScaleFit.Slope, f.ScaleFit.R2)
		}
	}

	if len(plots) > 0 {
		w("\n## Plots\n\n")
		for _, p := range plots {
			w("### %s\n\n![%s](%s)\n\n", p.Title, p.Title, p.File)
		}
	}

	w("## Runs\n\n| run | lab nodes | lab up | figures | errors |\n|---|---|---|---|---|\n")
	for _, run := range r.Records {
		keys := make([]string, 0, len(run.Figures))
		for k := range run.Figures {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var fs []string
		for _, k := range keys {
			fs = append(fs, k+" "+num(k, run.Figures[k]))
		}
		w("| %s | %d | %.0fs | %s | %s |\n", runName(run), run.LabNodes, run.LabUpSeconds, strings.Join(fs, ", "), mdEscape(strings.Join(run.Errors, "; ")))
	}
	if len(f.Failures) > 0 {
		w("\n## Failures\n\nMeasurements that failed; their figures are missing above, not made up.\n\n")
		for _, e := range f.Failures {
			w("- %s\n", mdEscape(e))
		}
	}
	w("\n## How it is measured\n\n")
	for _, l := range method {
		w("- %s\n", l)
	}
	return b.String()
}

var method = []string{
	"Every run is a fresh lab (`lab/lab.sh down` then `up`), v1.36.3 by default, plain profile; the bench holds `/tmp/haadm-lab.lock` throughout.",
	"promote_seconds: wall time of `haadm promote --nodes emei,wudang` (default layout: nginx on emei) on a 3-node lab, with the availability probe running.",
	"Availability probe: every 100 ms, to each apiserver (https://NODE:6443) and to the endpoint (https://10.250.0.12:8443), a read (GET namespace kube-system) and a write (merge patch of a ConfigMap), client-go without rate limit, 2 s timeout, none waiting for the last. A target counts from its first success (shaolin from the start); lb_requests and lb_requests_failed are the endpoint's requests from then on, max_gap_seconds the longest time without a successful answer of any target and operation until promote ends.",
	"kubeadm_join_seconds: a 3-node lab born with controlPlaneEndpoint (shaolin's address) and emei and wudang not joined; certificates uploaded (`kubeadm init phase upload-certs`), then `kubeadm join --control-plane --certificate-key` of emei, then of wudang, over ssh, both timed and summed. promote_vs_kubeadm pairs each run's promote with the same run's joins.",
	"dry_run_seconds: `promote --dry-run` on the fresh lab before the promote; noop_promote_seconds: the same promote right after; status_seconds: `haadm status` on the promoted cluster; status_dead_node_seconds: `haadm status --probe-timeout 2s` with wudang's eth0 down.",
	"Failover: shaolin's eth0 down, an attempt every 100 ms on a fresh connection with a 2 s timeout (read: list Nodes; write: create a ConfigMap), time to the first success of each; node-local's endpoint (127.0.0.1:6444 on every node) is probed from inside emei's network namespace. writes_lost: ConfigMaps whose create was acknowledged (through the endpoint, every 100 ms for 2 s before the cut) and that are not there when read back after the failover.",
	"scale: a 5-node lab per point, promoted to 2, 3, 4 and 5 masters; 1 master is the lab as it starts, not a promote.",
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
