package phaselog

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// testdata/promote.log is the progress part of a real promote's log on
// the lab (v1.36.3, nginx on emei, emei and wudang promoted), its
// per-file certificate lines dropped to keep it short.
func parsed(t *testing.T) []Line {
	t.Helper()
	f, err := os.Open("testdata/promote.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestParseLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in               string
		phase, node, msg string
		ok               bool
	}{
		{"2026-12-01T15:15:13.047306751Z [etcd] emei: etcd member started (6s)", "etcd", "emei", "etcd member started (6s)", true},
		{"2026-12-01T15:15:03.43410679Z [host-files] planned in 5ms: 0 step(s)", "host-files", "", "planned in 5ms: 0 step(s)", true},
		{"2026-12-01T15:15:58.072410815Z [cluster-config] start: kube-system/kubeadm-config: controlPlaneEndpoint 10.250.0.12:8443", "cluster-config", "", "start: kube-system/kubeadm-config: controlPlaneEndpoint 10.250.0.12:8443", true},
		{"+  advertiseAddress: 10.250.0.12", "", "", "", false},
		{"not-a-time [etcd] x", "", "", "", false},
	} {
		l, ok := parseLine(tc.in)
		if ok != tc.ok || l.Phase != tc.phase || l.Node != tc.node || l.Msg != tc.msg {
			t.Errorf("parseLine(%q) = %+v, %v", tc.in, l, ok)
		}
	}
}

func TestPhasesAddUpToTheRun(t *testing.T) {
	t.Parallel()
	lines := parsed(t)
	start := lines[0].At.Add(-500 * time.Millisecond)
	end := lines[len(lines)-1].At.Add(200 * time.Millisecond)
	ph := Phases(lines, start, end)
	var total float64
	got := map[string]float64{}
	var order []string
	for _, p := range ph {
		total += p.Seconds
		got[p.Phase] = p.Seconds
		order = append(order, p.Phase)
	}
	if want := end.Sub(start).Seconds(); math.Abs(total-want) > 1e-6 {
		t.Errorf("phases sum to %.3fs, the run took %.3fs", total, want)
	}
	if got[Startup] != 0.5 || math.Abs(got[Exit]-0.2) > 1e-9 {
		t.Errorf("startup %v, exit %v", got[Startup], got[Exit])
	}
	// The log: etcd from the end of host-files to "[etcd] done (36.1s)".
	if e := got["etcd"]; e < 36 || e > 36.5 {
		t.Errorf("etcd took %.2fs, the log says 36.1s", e)
	}
	want := "startup connect preflight plan backup etc-hosts certs host-files etcd control-plane mark lb kubelet cluster-config promote exit"
	if s := strings.Join(order, " "); s != want {
		t.Errorf("phase order\n got %s\nwant %s", s, want)
	}
}

func TestSteps(t *testing.T) {
	t.Parallel()
	steps := Steps(parsed(t))
	find := func(phase, node, what string) Step {
		for _, s := range steps {
			if s.Phase == phase && s.Node == node && s.What == what {
				return s
			}
		}
		t.Fatalf("no step %s %s %q in %+v", phase, node, what, steps)
		return Step{}
	}
	if s := find("etcd", "wudang", "etcd member started"); s.Seconds < 16 || s.Seconds > 16.2 {
		t.Errorf("wudang's etcd member started after %.2fs, the log says 16.1s", s.Seconds)
	}
	if s := find("control-plane", "emei", "kube-apiserver ready"); s.Seconds < 6 || s.Seconds > 6.1 {
		t.Errorf("emei's apiserver ready after %.2fs, the log says 6s", s.Seconds)
	}
	// A step whose "what" holds a colon, without a node.
	find("cluster-config", "", "kube-system/kubeadm-config: controlPlaneEndpoint 10.250.0.12:8443")
}

func TestStepFailed(t *testing.T) {
	t.Parallel()
	log := "2026-12-01T15:16:14.762338416Z [remove] wudang: start: etcd stopped\n" +
		"2026-12-01T15:16:15.81547153Z [remove] wudang: etcd stopped: FAILED (1.1s): node wudang: exit 1\n"
	lines, err := Parse(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	s := Steps(lines)
	if len(s) != 1 || !s[0].Failed || s[0].Node != "wudang" {
		t.Errorf("steps %+v", s)
	}
}
