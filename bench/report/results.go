// Package report turns the bench's runs into its results: the figures
// (each a median over runs with its minimum and maximum), the goals of
// issue 10 judged, latest.json and latest.md. Pure: data in, bytes out;
// the driver (bench/cmd/bench) measures, this only reckons and renders.
package report

import (
	"time"

	"github.com/haadm/haadm/bench/avail"
	"github.com/haadm/haadm/bench/phaselog"
)

// Scenarios, one fresh lab per run each.
const (
	// ScenarioPromote: a 3-node lab, dry run, promote (with the
	// availability probe), the same promote again, status, status with
	// wudang cut off, failover of the default (external) layout.
	ScenarioPromote = "promote"
	// ScenarioKubeadm: the baseline, a lab born with controlPlaneEndpoint
	// whose emei and wudang join with kubeadm join --control-plane.
	ScenarioKubeadm = "kubeadm"
	// ScenarioFailover: promote in another LB mode, then failover.
	ScenarioFailover = "failover"
	// ScenarioScale: a 5-node lab promoted to Masters masters.
	ScenarioScale = "scale"
)

// Run is one scenario's run on one fresh lab, as the driver measured it.
type Run struct {
	Scenario string    `json:"scenario"`
	Index    int       `json:"run"` // 1..BENCH_RUNS
	Mode     string    `json:"lb_mode,omitempty"`
	Masters  int       `json:"masters,omitempty"`
	LabNodes int       `json:"lab_nodes"`
	Started  time.Time `json:"started_at"`
	// LabUpSeconds is `lab.sh down` and `lab.sh up`: context, no goal.
	LabUpSeconds float64 `json:"lab_up_seconds"`
	// Figures are this run's numbers under the results' own keys
	// (promote_seconds, failover_read_seconds...).
	Figures map[string]float64 `json:"figures"`
	// Phases and Steps are the promote's, from its log file.
	Phases       []phaselog.PhaseTime `json:"promote_phases,omitempty"`
	Steps        []phaselog.Step      `json:"promote_steps,omitempty"`
	Availability []avail.Stats        `json:"availability,omitempty"`
	Timeline     []avail.Bucket       `json:"availability_timeline,omitempty"`
	// Errors are the measurements that failed, each naming what failed;
	// their figures are missing, never made up.
	Errors []string `json:"errors,omitempty"`
}

// Machine is what the bench ran on.
type Machine struct {
	CPUs        int    `json:"nproc"`
	CPUModel    string `json:"cpu_model"`
	MemoryBytes uint64 `json:"memory_bytes"`
	Kernel      string `json:"kernel"`
	GoVersion   string `json:"go_version"`
}

// Versions is what was measured.
type Versions struct {
	Haadm      string `json:"haadm"` // git describe
	Commit     string `json:"haadm_commit"`
	Kubernetes string `json:"kubernetes"`
	Etcd       string `json:"etcd"`
}

// Results is one bench run: its settings, where and what it measured,
// and every run.
type Results struct {
	Started  time.Time `json:"started_at"`
	Finished time.Time `json:"finished_at"`
	// Runs are the runs of every scenario done; RunsAsked BENCH_RUNS
	// (more when the bench was stopped early).
	Runs      int      `json:"bench_runs"`
	RunsAsked int      `json:"bench_runs_asked"`
	Only      string   `json:"bench_only,omitempty"`
	Machine   Machine  `json:"machine"`
	Versions  Versions `json:"versions"`
	Records   []Run    `json:"runs"`
}
