package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/haadm/haadm/bench/avail"
	"github.com/haadm/haadm/bench/report"
)

// bench is one `make bench`.
type bench struct {
	cfg     config
	log     io.Writer
	scratch string // haadm's working directory (its backups land there)
	logs    string // the labs' and haadm's logs, not committed
	results report.Results
	// timeline is the first promote's probe, request by request, for the
	// availability plot (latest.json keeps per-second counts only).
	timeline      []avail.Sample
	timelineRun   int
	timelineEnd   time.Duration
	timelineMarks []phaseMark
	// keepAvailability links an availability.png drawn earlier (render).
	keepAvailability bool
}

// phaseMark is when a phase began, since the promote's start.
type phaseMark struct {
	at    time.Duration
	phase string
}

func (b *bench) say(format string, a ...any) {
	fmt.Fprintf(b.log, "[bench %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func (b *bench) run(ctx context.Context) error {
	if err := os.MkdirAll(b.cfg.out, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	b.logs = filepath.Join(b.cfg.out, "logs")
	if err := os.MkdirAll(b.logs, 0o755); err != nil {
		return fmt.Errorf("logs directory: %w", err)
	}
	var err error
	if b.scratch, err = os.MkdirTemp("", "haadm-bench-"); err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	defer os.RemoveAll(b.scratch)
	unlock, err := lockLab(ctx, b.log)
	if err != nil {
		return err
	}
	defer unlock()
	b.results = report.Results{Started: time.Now().UTC(), Runs: b.cfg.runs, RunsAsked: b.cfg.runs, Only: b.cfg.onlyRaw, Machine: machine(ctx)}
	b.results.Versions.Haadm, b.results.Versions.Commit = haadmVersion(ctx, b.cfg.haadm)
	b.say("haadm %s, %d run(s) of every scenario, results in %s", b.results.Versions.Haadm, b.cfg.runs, b.cfg.out)

	// SIGUSR1 ends the bench after the run under way, with the runs
	// done so far as its results (a bench cut short by time, not broken).
	last := make(chan os.Signal, 1)
	signal.Notify(last, syscall.SIGUSR1)
	defer signal.Stop(last)
	// Runs interleave the scenarios, so a slow spell of the machine
	// spreads over all of them instead of skewing one.
runs:
	for i := 1; i <= b.cfg.runs; i++ {
		select {
		case <-last:
			b.say("SIGUSR1: stopping after %d run(s) of %d", i-1, b.cfg.runs)
			b.results.Runs = i - 1
			break runs
		default:
		}
		if b.cfg.wants(report.ScenarioPromote, "") {
			b.record(ctx, b.promoteRun(ctx, i))
		}
		if b.cfg.wants(report.ScenarioKubeadm, "") {
			b.record(ctx, b.kubeadmRun(ctx, i))
		}
		for _, mode := range []string{"node-local", "vip"} {
			if b.cfg.wants(report.ScenarioFailover, mode) {
				b.record(ctx, b.failoverRun(ctx, i, mode))
			}
		}
		for m := 2; m <= 5; m++ {
			if b.cfg.wants(report.ScenarioScale, fmt.Sprint(m)) {
				b.record(ctx, b.scaleRun(ctx, i, m))
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := b.labSh(context.WithoutCancel(ctx), filepath.Join(b.logs, "lab-down.log"), nil, "down"); err != nil {
		b.say("%v", err)
	}
	b.results.Finished = time.Now().UTC()
	if err := b.write(true); err != nil {
		return err
	}
	b.say("done in %s: %s", b.results.Finished.Sub(b.results.Started).Round(time.Second), filepath.Join(b.cfg.out, "latest.md"))
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w (the results so far are written)", ctx.Err())
	}
	return nil
}

// record keeps a run and rewrites the results, so an interrupted bench
// leaves what it measured.
func (b *bench) record(ctx context.Context, r report.Run) {
	for _, e := range r.Errors {
		b.say("%s run %d: FAILED: %s", r.Scenario, r.Index, e)
	}
	b.results.Records = append(b.results.Records, r)
	b.results.Finished = time.Now().UTC()
	if err := b.write(false); err != nil {
		b.say("%v", err)
	}
}
