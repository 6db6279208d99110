package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haadm/haadm/bench/avail"
	"github.com/haadm/haadm/bench/phaselog"
	"github.com/haadm/haadm/bench/report"
)

// The lab's nodes and addresses (lab/lab.sh: 10.250.0.11 onwards).
var (
	labIPs  = map[string]string{"shaolin": "10.250.0.11", "emei": "10.250.0.12", "wudang": "10.250.0.13", "huashan": "10.250.0.14", "kunlun": "10.250.0.15"}
	workers = []string{"emei", "wudang", "huashan", "kunlun"}
)

const (
	first = "shaolin"
	// externalEndpoint is the default layout's: nginx on emei (the first
	// of --nodes), port 8443.
	externalEndpoint = "10.250.0.12:8443"
	vipAddr          = "10.250.0.100"
	// statusProbeTimeout is status_dead_node_seconds' --probe-timeout.
	statusProbeTimeout = 2 * time.Second
	// labIgnore is what the lab's nodes cannot pass of kubeadm's
	// preflight (no systemd, swap, no br_netfilter, no crictl): lab.sh
	// joins its workers with the same list.
	labIgnore = "SystemVerification,Swap,FileContent--proc-sys-net-bridge-bridge-nf-call-iptables,FileExisting-crictl"
)

// modeArgs are promote's flags for an LB mode, and the endpoint the
// bench probes for it from this machine ("" for node-local: its endpoint
// is each node's own 127.0.0.1:6444).
func modeArgs(mode string) ([]string, string) {
	switch mode {
	case "node-local":
		return []string{"--lb-mode", "node-local"}, ""
	case "vip":
		return []string{"--lb-mode", "vip", "--vip", vipAddr}, vipAddr + ":8443"
	}
	return nil, externalEndpoint
}

func (b *bench) logPath(name string) string { return filepath.Join(b.logs, name) }

// newRun starts a run's record and its lab; ok is false when the lab did
// not come up (the record says why).
func (b *bench) newRun(ctx context.Context, scenario string, i int, spec labSpec, name string) (report.Run, bool) {
	r := report.Run{Scenario: scenario, Index: i, LabNodes: spec.nodes, Started: time.Now().UTC(), Figures: map[string]float64{}}
	b.say("%s: fresh lab of %d node(s)", name, spec.nodes)
	up, err := b.labUp(ctx, spec, b.logPath(name+"-lab.log"))
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return r, false
	}
	r.LabUpSeconds = up.Seconds()
	b.say("%s: lab up in %s", name, up.Round(time.Second))
	b.versions(ctx)
	return r, true
}

func fail(r *report.Run, format string, a ...any) {
	r.Errors = append(r.Errors, fmt.Sprintf(format, a...))
}

// promote runs `haadm promote --nodes NODES ARGS...` and records its wall
// time and its phases; ok is false when it failed.
func (b *bench) promote(ctx context.Context, r *report.Run, name string, nodes []string, args ...string) (result, bool) {
	all := append([]string{"promote", "--nodes", strings.Join(nodes, ",")}, args...)
	res, err := b.haadm(ctx, b.logPath(name+"-promote.log"), all...)
	if err != nil {
		fail(r, "%v", err)
		return res, false
	}
	if res.code != 0 {
		fail(r, "haadm %s: exit %d (log %s): %s", strings.Join(all, " "), res.code, res.logFile, lastLines(res.stderr, 4))
		return res, false
	}
	r.Figures[report.PromoteSeconds] = res.took.Seconds()
	b.say("%s: promote --nodes %s took %s", name, strings.Join(nodes, ","), res.took.Round(100*time.Millisecond))
	if lines, err := readLog(res.logFile); err != nil {
		fail(r, "%v", err)
	} else {
		r.Phases = phaselog.Phases(lines, res.start, res.end)
		r.Steps = phaselog.Steps(lines)
	}
	return res, true
}

func readLog(path string) ([]phaselog.Line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("haadm's log: %w", err)
	}
	defer f.Close()
	return phaselog.Parse(f)
}

// promoteRun is the main scenario on a 3-node lab: dry run, promote with
// the availability probe, the same promote again, status, status with
// wudang cut off, and the default layout's failover.
func (b *bench) promoteRun(ctx context.Context, i int) report.Run {
	name := fmt.Sprintf("promote-%d", i)
	r, ok := b.newRun(ctx, report.ScenarioPromote, i, labSpec{nodes: 3}, name)
	r.Mode = "external"
	if !ok {
		return r
	}
	nodes := []string{"emei", "wudang"}

	if dr, err := b.haadm(ctx, b.logPath(name+"-dry-run.log"), "promote", "--nodes", "emei,wudang", "--dry-run"); err != nil {
		fail(&r, "%v", err)
	} else if dr.code != 0 {
		fail(&r, "promote --dry-run: exit %d: %s", dr.code, lastLines(dr.stderr, 4))
	} else {
		r.Figures[report.DryRunSeconds] = dr.took.Seconds()
	}

	targets := []probeTarget{{first, "https://" + labIPs[first] + ":6443"}}
	for _, n := range nodes {
		targets = append(targets, probeTarget{n, "https://" + labIPs[n] + ":6443"})
	}
	targets = append(targets, probeTarget{"endpoint", "https://" + externalEndpoint})
	kc, err := client(b.kubeconfig(), "")
	if err != nil {
		fail(&r, "%v", err)
		return r
	}
	if err := prepareProbe(ctx, kc, targets); err != nil {
		fail(&r, "%v", err)
		return r
	}
	t0 := time.Now()
	p, err := startProbe(b.kubeconfig(), targets, t0)
	if err != nil {
		fail(&r, "%v", err)
		return r
	}
	res, ok := b.promote(ctx, &r, name, nodes)
	end := res.end
	if end.IsZero() {
		end = time.Now()
	}
	samples, window := p.finish(end)
	var inWindow []avail.Sample
	for _, s := range samples {
		if s.Start <= window {
			inWindow = append(inWindow, s)
		}
	}
	b.availability(&r, inWindow, window)
	// Requests that failed during a promote have so far been slow writes on
	// several apiservers at once: etcd's own account (elections, slow
	// applies and fsyncs) is what says why.
	b.keepEtcdLogs(ctx, name, append([]string{first}, nodes...))
	if ok && b.timeline == nil {
		b.timeline, b.timelineRun, b.timelineEnd = inWindow, i, window
		b.timelineMarks = marks(res)
	}
	if !ok {
		return r
	}

	if np, err := b.haadm(ctx, b.logPath(name+"-noop.log"), "promote", "--nodes", "emei,wudang"); err != nil {
		fail(&r, "%v", err)
	} else if np.code != 0 {
		fail(&r, "the same promote again: exit %d: %s", np.code, lastLines(np.stderr, 4))
	} else {
		r.Figures[report.NoopPromoteSeconds] = np.took.Seconds()
		if !strings.Contains(np.stderr+np.stdout, "nothing to do") {
			fail(&r, "the same promote again found work (its time is recorded): %s", lastLines(np.stderr, 4))
		}
	}

	if st, err := b.haadm(ctx, b.logPath(name+"-status.log"), "status"); err != nil {
		fail(&r, "%v", err)
	} else {
		r.Figures[report.StatusSeconds] = st.took.Seconds()
		if st.code != 0 {
			fail(&r, "haadm status after the promote: exit %d, want 0 (ha): %s", st.code, lastLines(st.stdout, 6))
		}
	}

	b.deadNodeStatus(ctx, &r, name)
	if err := b.waitHA(ctx); err != nil {
		fail(&r, "after wudang came back: %v; no failover measured", err)
		return r
	}
	b.failover(ctx, &r, "https://"+externalEndpoint, name)
	return r
}

// keepEtcdLogs saves each node's etcd container log beside the run's
// other logs; a node whose log cannot be had gets a line saying why.
func (b *bench) keepEtcdLogs(ctx context.Context, name string, nodes []string) {
	for _, n := range nodes {
		// The kubelet's own files: the nodes have no crictl on their PATH.
		out, err := b.ssh(ctx, n, "tail -q -n 5000 /var/log/pods/kube-system_etcd-*/etcd/*.log")
		if err != nil {
			out = err.Error() + "\n"
		}
		if err := os.WriteFile(b.logPath(name+"-etcd-"+n+".log"), []byte(out), 0o644); err != nil {
			b.say("%s: keeping %s's etcd log: %v", name, n, err)
		}
	}
}

// marks are the phases' starts in a promote's log, for the timeline.
func marks(res result) []phaseMark {
	lines, err := readLog(res.logFile)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []phaseMark
	for _, l := range lines {
		p := l.Phase
		if strings.HasPrefix(l.Msg, "planned in ") {
			p = phaselog.Plan
		}
		// Phases with nothing to do only say so: no mark for them.
		if seen[p] || strings.HasSuffix(l.Msg, "already done") || p == "ssh" || p == "promote" {
			continue
		}
		seen[p] = true
		out = append(out, phaseMark{at: l.At.Sub(res.start), phase: p})
	}
	return out
}

// availability judges the probe: the endpoint's requests (from its first
// success) and failures, and the longest gap of any target.
func (b *bench) availability(r *report.Run, samples []avail.Sample, window time.Duration) {
	st := avail.Analyze(samples, window, []string{first})
	r.Availability, r.Timeline = st, avail.Timeline(samples)
	var lbReq, lbFailed int
	var gap float64
	lbSeen := false
	for _, s := range st {
		if s.Since < 0 {
			if s.Target == first {
				fail(r, "the probe: %s's %s never succeeded during the promote", s.Target, s.Op)
			}
			continue
		}
		if s.Target == "endpoint" {
			lbSeen = true
			lbReq += s.Requests
			lbFailed += s.Failed
		}
		gap = max(gap, s.MaxGap)
	}
	if !lbSeen {
		fail(r, "the probe: the endpoint %s never answered during the promote", externalEndpoint)
		return
	}
	r.Figures[report.LBRequests] = float64(lbReq)
	r.Figures[report.LBRequestsFailed] = float64(lbFailed)
	r.Figures[report.MaxGapSeconds] = gap
}

// deadNodeStatus times `haadm status` with wudang cut off the network.
func (b *bench) deadNodeStatus(ctx context.Context, r *report.Run, name string) {
	if err := link(ctx, "wudang", false); err != nil {
		fail(r, "%v", err)
		return
	}
	st, err := b.haadm(ctx, b.logPath(name+"-status-dead.log"), "status", "--probe-timeout", statusProbeTimeout.String())
	if uerr := link(context.WithoutCancel(ctx), "wudang", true); uerr != nil {
		fail(r, "%v", uerr)
	}
	if err != nil {
		fail(r, "%v", err)
		return
	}
	r.Figures[report.StatusDeadNodeSeconds] = st.took.Seconds()
	r.Figures[report.StatusProbeTimeout] = statusProbeTimeout.Seconds()
	if st.code == 0 {
		fail(r, "haadm status with wudang cut off said ha (exit 0)")
	}
}

// waitHA waits for haadm status to say ha (exit 0) again.
func (b *bench) waitHA(ctx context.Context) error {
	var last result
	err := waitUntil(ctx, 3*time.Minute, func() error {
		st, err := b.haadm(ctx, filepath.Join(b.scratch, "status-wait.log"), "status")
		if err != nil {
			return err
		}
		last = st
		if st.code != 0 {
			return fmt.Errorf("haadm status: exit %d", st.code)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("waiting for haadm status to say ha: %w\n%s", err, lastLines(last.stdout, 8))
	}
	return nil
}

// failover cuts shaolin off and records the first read and write through
// server and the writes lost; server "" is node-local's, measured from
// inside emei's network namespace.
func (b *bench) failover(ctx context.Context, r *report.Run, server, name string) {
	defer func() {
		if err := link(context.WithoutCancel(ctx), first, true); err != nil {
			fail(r, "%v", err)
		}
	}()
	id := strings.NewReplacer("-", "").Replace(name) + fmt.Sprint(time.Now().Unix()%100000)
	var res failoverResult
	var err error
	if server != "" {
		res, err = measureFailover(ctx, b.kubeconfig(), server, first, id)
	} else {
		server = "https://127.0.0.1:6444 (in emei's network namespace)"
		res, err = b.failoverInNetns(ctx, "emei", "https://127.0.0.1:6444", id)
	}
	if res.Read >= 0 && res.AckedBefore > 0 {
		r.Figures[report.FailoverReadSeconds] = res.Read
	}
	if res.Write >= 0 && res.AckedBefore > 0 {
		r.Figures[report.FailoverWriteSeconds] = res.Write
	}
	if res.AckedBefore > 0 {
		r.Figures[report.WritesLost] = float64(res.LostBefore)
		r.Figures[report.WritesLostAll] = float64(res.LostAfter)
		r.Figures[report.WritesAcked] = float64(res.AckedBefore + res.AckedAfter)
	}
	if err != nil {
		fail(r, "failover through %s: %v", server, err)
		return
	}
	b.say("%s: with shaolin cut off, first read after %.2fs, first write after %.2fs, %d of %d writes acked before the cut lost",
		name, res.Read, res.Write, res.LostBefore, res.AckedBefore)
}

// failoverInNetns runs `bench failover-probe` inside node's network
// namespace, where 127.0.0.1 is the node's own.
func (b *bench) failoverInNetns(ctx context.Context, node, server, id string) (failoverResult, error) {
	self, err := os.Executable()
	if err != nil {
		return failoverResult{Read: -1, Write: -1}, fmt.Errorf("finding the bench binary: %w", err)
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", "haadm-"+node, self, "failover-probe",
		"-kubeconfig", b.kubeconfig(), "-server", server, "-cut", first, "-id", id)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var res struct {
		failoverResult
		Error string `json:"error"`
	}
	res.Read, res.Write = -1, -1
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		return res.failoverResult, fmt.Errorf("failover-probe in haadm-%s: %v (%v): %s", node, err, jerr, lastLines(stderr.String(), 4))
	}
	if res.Error != "" {
		return res.failoverResult, fmt.Errorf("in haadm-%s: %s", node, res.Error)
	}
	return res.failoverResult, nil
}

// failoverRun promotes a 3-node lab in another LB mode and measures its
// failover.
func (b *bench) failoverRun(ctx context.Context, i int, mode string) report.Run {
	name := fmt.Sprintf("failover-%s-%d", mode, i)
	r, ok := b.newRun(ctx, report.ScenarioFailover, i, labSpec{nodes: 3}, name)
	r.Mode = mode
	if !ok {
		return r
	}
	args, endpoint := modeArgs(mode)
	if _, ok := b.promote(ctx, &r, name, []string{"emei", "wudang"}, args...); !ok {
		return r
	}
	server := ""
	if endpoint != "" {
		server = "https://" + endpoint
	}
	b.failover(ctx, &r, server, name)
	return r
}

// certKey is what `kubeadm init phase upload-certs` prints last.
var certKey = regexp.MustCompile(`(?m)^([0-9a-f]{64})\s*$`)

// kubeadmRun is the baseline: a lab born the way kubeadm supports HA
// (controlPlaneEndpoint set at init, certificates uploaded), whose emei
// and wudang join as control planes with kubeadm, one after the other.
func (b *bench) kubeadmRun(ctx context.Context, i int) report.Run {
	name := fmt.Sprintf("kubeadm-%d", i)
	r, ok := b.newRun(ctx, report.ScenarioKubeadm, i, labSpec{nodes: 3, spare: 2, controlPlaneEndpoint: labIPs[first] + ":6443"}, name)
	if !ok {
		return r
	}
	// The node's address comes in a configuration file: kubeadm would
	// take it from the default route, and the lab has none.
	out, err := b.ssh(ctx, first, "printf 'apiVersion: kubeadm.k8s.io/v1beta4\\nkind: InitConfiguration\\nlocalAPIEndpoint:\\n  advertiseAddress: "+labIPs[first]+"\\n' > /tmp/upload-certs.yaml && "+
		"kubeadm init phase upload-certs --upload-certs --config /tmp/upload-certs.yaml 2>&1")
	if err != nil {
		fail(&r, "%v", err)
		return r
	}
	m := certKey.FindStringSubmatch(out)
	if m == nil {
		fail(&r, "kubeadm init phase upload-certs printed no certificate key: %s", lastLines(out, 4))
		return r
	}
	join, err := b.ssh(ctx, first, "kubeadm token create --ttl 30m --print-join-command")
	if err != nil {
		fail(&r, "%v", err)
		return r
	}
	// The output has kubeadm's warnings too (no default route): the
	// command is its "kubeadm join" line.
	join = joinLine(join)
	if join == "" {
		fail(&r, "kubeadm token create --print-join-command printed no kubeadm join line: %s", lastLines(out, 4))
		return r
	}
	var total float64
	for _, n := range []string{"emei", "wudang"} {
		cmd := join + " --control-plane --certificate-key " + m[1] + " --apiserver-advertise-address " + labIPs[n] +
			" --cri-socket unix:///run/containerd/containerd.sock --ignore-preflight-errors=" + labIgnore
		t0 := time.Now()
		out, err := b.ssh(ctx, n, cmd+" 2>&1")
		took := time.Since(t0)
		_ = os.WriteFile(b.logPath(name+"-join-"+n+".log"), []byte(out), 0o644)
		if err != nil {
			fail(&r, "kubeadm join --control-plane on %s: %v", n, err)
			return r
		}
		b.say("%s: kubeadm join --control-plane of %s took %s", name, n, took.Round(100*time.Millisecond))
		r.Figures["kubeadm_join_"+n+"_seconds"] = took.Seconds()
		total += took.Seconds()
	}
	r.Figures[report.KubeadmJoinSeconds] = total
	// The joins must have made what promote makes: three control planes.
	kc, err := client(b.kubeconfig(), "")
	if err == nil {
		var nodes int
		if l, lerr := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "node-role.kubernetes.io/control-plane"}); lerr == nil {
			nodes = len(l.Items)
		} else {
			err = lerr
		}
		if err == nil && nodes != 3 {
			err = fmt.Errorf("%d control-plane nodes, want 3", nodes)
		}
	}
	if err != nil {
		fail(&r, "after the kubeadm joins: %v", err)
	}
	return r
}

// joinLine is the "kubeadm join ..." line of out, "" when there is none.
func joinLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "kubeadm join ") {
			return l
		}
	}
	return ""
}

// scaleRun promotes a 5-node lab to masters masters.
func (b *bench) scaleRun(ctx context.Context, i, masters int) report.Run {
	name := fmt.Sprintf("scale-%d-%d", masters, i)
	r, ok := b.newRun(ctx, report.ScenarioScale, i, labSpec{nodes: 5}, name)
	r.Masters, r.Mode = masters, "external"
	if !ok {
		return r
	}
	b.promote(ctx, &r, name, workers[:masters-1])
	return r
}

// versions reads the cluster's Kubernetes and etcd versions, once.
func (b *bench) versions(ctx context.Context) {
	v := &b.results.Versions
	if v.Kubernetes != "" {
		return
	}
	kc, err := client(b.kubeconfig(), "")
	if err != nil {
		return
	}
	if sv, err := kc.Discovery().ServerVersion(); err == nil {
		v.Kubernetes = sv.GitVersion
	}
	if pod, err := kc.CoreV1().Pods("kube-system").Get(ctx, "etcd-"+first, metav1.GetOptions{}); err == nil && len(pod.Spec.Containers) > 0 {
		img := pod.Spec.Containers[0].Image
		v.Etcd = img[strings.LastIndex(img, ":")+1:]
	}
}
