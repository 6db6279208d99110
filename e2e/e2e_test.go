//go:build e2e

// Package e2e promotes the lab's real kubeadm cluster with the haadm binary,
// exactly as an operator would, checks every result on the nodes themselves,
// then cuts the first master off the network and proves the API still
// answers through the load balancer. `make e2e` brings the lab up first.
//
// Figures (promote wall time, API requests failed during the promote,
// failover time, status wall time) are measured and reported, never asserted.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/cluster-bootstrap/token/jws"

	"github.com/haadm/haadm/internal/probe"
)

const (
	first  = "shaolin"
	lbNode = "emei"
)

// mode is the load-balancer layout under test, chosen by E2E_LB_MODE:
// "external" (the proxy on emei, the default), "node-local" (on 127.0.0.1
// of every node) or "vip" (on every master, behind keepalived's address
// vipAddr); E2E_LB_ENGINE picks the proxy (nginx, the default, or haproxy).
type mode struct {
	name     string
	engine   string
	args     []string // promote flags
	endpoint string   // the controlPlaneEndpoint haadm must set
	sanIPs   []string // extra IP SANs every apiserver cert must carry
	sanDNS   []string
}

// vipAddr is a free address on the lab's bridge.
const vipAddr = "10.250.0.100"

func lbMode(t *testing.T) mode {
	engine := os.Getenv("E2E_LB_ENGINE")
	if engine == "" {
		engine = "nginx"
	}
	var m mode
	switch name := os.Getenv("E2E_LB_MODE"); name {
	case "", "external":
		m = mode{name: "external", args: []string{"--lb-node", lbNode}, endpoint: "10.250.0.12:8443", sanIPs: []string{"10.250.0.12"}, sanDNS: []string{"emei"}}
	case "node-local":
		m = mode{name: "node-local", args: []string{"--lb-mode", "node-local"}, endpoint: "localhost:6444", sanIPs: []string{"127.0.0.1"}, sanDNS: []string{"localhost"}}
	case "vip":
		m = mode{name: "vip", args: []string{"--lb-mode", "vip", "--vip", vipAddr}, endpoint: vipAddr + ":8443", sanIPs: []string{vipAddr}}
	default:
		t.Fatalf("E2E_LB_MODE=%q: want external, node-local or vip", name)
	}
	m.engine = engine
	m.args = append(m.args, "--lb-engine", engine)
	return m
}

// lbConf is where the engine under test keeps haadm's configuration.
func (m mode) lbConf() string {
	if m.engine == "haproxy" {
		return "/etc/haproxy/haproxy.cfg"
	}
	return "/etc/nginx/nginx.conf"
}

func (m mode) promote(extra ...string) []string {
	return append(m.promoteNodes("emei", "wudang"), extra...)
}

// defaulted drops --lb-node from args: haadm must choose the same node.
func (m mode) defaulted(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--lb-node" {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

func (m mode) promoteNodes(nodes ...string) []string {
	return append([]string{"promote", "--nodes", strings.Join(nodes, ",")}, m.args...)
}

type lab struct {
	root, haadm, kubeconfig, sshConfig string
	ips                                map[string]string
	metrics                            map[string]any
	// production is the lab's production profile (LAB_PROFILE=production,
	// told by E2E_PROFILE): Secrets encrypted at rest, an audit log, a
	// scheduler config file, no kube-proxy, the apiserver on apiPort.
	production bool
	apiPort    string
	// spare is a fourth node (E2E_NODES=4, the lab's LAB_NODES): after
	// shaolin is lost for good and removed, it is promoted in its place.
	spare string
	// bastion is the lab's bastion access (LAB_ACCESS=bastion, told by
	// E2E_ACCESS): the nodes take SSH only through the bastion gate, as the
	// non-root user lab, so the test's own commands run under sudo.
	bastion bool
}

// The lab's bastion (LAB_ACCESS=bastion) and its one login user.
const (
	gateIP  = "10.250.0.2"
	labUser = "lab"
)

func setup(t *testing.T) *lab {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{root: root, haadm: filepath.Join(root, "bin/haadm"), kubeconfig: filepath.Join(root, ".lab/kubeconfig"),
		sshConfig: filepath.Join(root, ".lab/ssh_config"), metrics: map[string]any{},
		ips: map[string]string{"shaolin": "10.250.0.11", "emei": "10.250.0.12", "wudang": "10.250.0.13"}, apiPort: "6443"}
	if os.Getenv("E2E_PROFILE") == "production" {
		l.production, l.apiPort = true, "7443"
	}
	if os.Getenv("E2E_NODES") == "4" {
		l.spare = "huashan"
	}
	switch a := os.Getenv("E2E_ACCESS"); a {
	case "", "direct":
	case "bastion":
		l.bastion = true
	default:
		t.Fatalf("E2E_ACCESS=%q: want direct or bastion", a)
	}
	for _, f := range []string{l.haadm, l.kubeconfig, l.sshConfig} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s: %v (run `make e2e`, which builds haadm and brings the lab up)", f, err)
		}
	}
	return l
}

func (l *lab) kube(t *testing.T, server string) kubernetes.Interface {
	t.Helper()
	cs, err := l.kubeClient(server)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func (l *lab) kubeClient(server string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", l.kubeconfig)
	if err != nil {
		return nil, err
	}
	if server != "" {
		cfg = rest.CopyConfig(cfg)
		cfg.Host = server
	}
	cfg.Timeout = 5 * time.Second
	// No client-side rate limit: the failover probes start ten requests a
	// second, and client-go's default (5 a second) queued them for many
	// seconds, which the figures then counted as failover.
	cfg.QPS = -1
	return kubernetes.NewForConfig(cfg)
}

// freshKube is a client on a connection of its own, with a 2 s timeout:
// a custom dialer keeps client-go from sharing a cached transport.
func (l *lab) freshKube(t *testing.T, server string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", l.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = server
	cfg.Timeout = 2 * time.Second
	cfg.Dial = (&net.Dialer{Timeout: time.Second}).DialContext
	cfg.QPS = -1
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// ssh runs a command inside a node through the lab's ssh_config, as a user
// would, as root.
func (l *lab) ssh(t *testing.T, node, cmd string) string {
	t.Helper()
	out, err := l.sshCmd(node, cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh %s %q: %v\n%s", node, cmd, err, out)
	}
	return string(out)
}

// sshCmd is the ssh command running cmd as root on node: every inspection
// of the test goes through it.
func (l *lab) sshCmd(node, cmd string) *exec.Cmd {
	return exec.Command("ssh", "-F", l.sshConfig, node, l.asRoot(cmd))
}

// asRoot is cmd as the remote shell must run it to run as root: unchanged
// when the lab logs in as root, else under passwordless sudo.
func (l *lab) asRoot(cmd string) string {
	if !l.bastion {
		return cmd
	}
	return "sudo -n sh -c " + shellQuote(cmd)
}

// shellQuote quotes s as one word for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
	acted          bool // runUntilDo reached its marker
}

func (l *lab) run(t *testing.T, args ...string) result {
	t.Helper()
	all := append([]string{"--kubeconfig", l.kubeconfig, "--ssh-config", l.sshConfig, "--log-file", filepath.Join(t.TempDir(), "haadm.log")}, args...)
	cmd := exec.Command(l.haadm, all...)
	cmd.Dir = t.TempDir()
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	t0 := time.Now()
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: se.String(), took: time.Since(t0)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("haadm %v: %v", args, err)
	}
	return r
}

const etcdctlFlags = "etcdctl --endpoints=https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt " +
	"--cert /etc/kubernetes/pki/etcd/healthcheck-client.crt --key /etc/kubernetes/pki/etcd/healthcheck-client.key "

// runUntil runs haadm and interrupts it (SIGINT, as Ctrl-C) once a line of
// its progress contains marker.
func (l *lab) runUntil(t *testing.T, marker string, args ...string) result {
	t.Helper()
	return l.runUntilDo(t, marker, func(cmd *exec.Cmd) { _ = cmd.Process.Signal(os.Interrupt) }, args...)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (l *lab) etcdctl(t *testing.T, node, args string) string {
	return l.ssh(t, node, etcdctlFlags+args+" 2>/dev/null")
}

// checkEncrypted reads a Secret straight from etcd: it must be stored
// encrypted with the lab's aescbc key, not in clear.
func (l *lab) checkEncrypted(t *testing.T, name string) {
	t.Helper()
	out := l.etcdctl(t, first, "get --print-value-only /registry/secrets/default/"+name)
	if !strings.HasPrefix(out, "k8s:enc:aescbc:v1:key1:") {
		t.Errorf("Secret %s is not encrypted at rest in etcd: %.60q", name, out)
	}
}

// healthyMembers counts healthy etcd members without failing the test:
// it is polled while a member is down.
func (l *lab) healthyMembers(node string) int {
	out, _ := l.sshCmd(node, etcdctlFlags+"endpoint health --cluster 2>/dev/null").CombinedOutput()
	return strings.Count(string(out), "is healthy")
}

type etcdMember struct {
	ID        uint64   `json:"ID"`
	Name      string   `json:"name"`
	PeerURLs  []string `json:"peerURLs"`
	IsLearner bool     `json:"isLearner"`
}

type etcdMembers struct {
	Members []etcdMember `json:"members"`
}

func (l *lab) members(t *testing.T, node string) etcdMembers {
	var m etcdMembers
	if err := json.Unmarshal([]byte(l.etcdctl(t, node, "member list -w json")), &m); err != nil {
		t.Fatalf("etcd member list on %s: %v", node, err)
	}
	return m
}

func cert(t *testing.T, pemText string) *x509.Certificate {
	b, _ := pem.Decode([]byte(pemText))
	if b == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func server(t *testing.T, kubeconfig string) string {
	cfg, err := clientcmd.Load([]byte(kubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	// cluster-info's kubeconfig has a cluster and no context.
	if ctx, ok := cfg.Contexts[cfg.CurrentContext]; ok {
		if c, ok := cfg.Clusters[ctx.Cluster]; ok {
			return c.Server
		}
	}
	for _, c := range cfg.Clusters {
		return c.Server
	}
	t.Fatalf("kubeconfig without a cluster:\n%s", kubeconfig)
	return ""
}

func TestE2E(t *testing.T) {
	l := setup(t)
	m := lbMode(t)
	endpoint := m.endpoint
	ctx := context.Background()
	l.metrics["lb_mode"] = m.name
	defer func() {
		b, _ := json.MarshalIndent(l.metrics, "", "  ")
		t.Logf("metrics: %s", b)
		_ = os.WriteFile(filepath.Join(l.root, ".lab/e2e-metrics-"+m.name+".json"), b, 0o644)
	}()

	t.Run("lab is a healthy single-master kubeadm cluster", func(t *testing.T) {
		kc := l.kube(t, "")
		nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := len(l.ips) + len(l.spareNodes()); len(nodes.Items) != want {
			t.Fatalf("%d nodes, want %d", len(nodes.Items), want)
		}
		for _, n := range nodes.Items {
			_, cp := n.Labels["node-role.kubernetes.io/control-plane"]
			if cp != (n.Name == first) {
				t.Errorf("node %s: control-plane label %v", n.Name, cp)
			}
			if !ready(n) {
				t.Errorf("node %s not Ready", n.Name)
			}
		}
		if m := l.members(t, first); len(m.Members) != 1 {
			t.Errorf("etcd has %d members, want 1", len(m.Members))
		}
		cm, err := kc.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(cm.Data["ClusterConfiguration"], "controlPlaneEndpoint") {
			t.Errorf("kubeadm-config already has a controlPlaneEndpoint:\n%s", cm.Data["ClusterConfiguration"])
		}
		pods, err := kc.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-proxy"})
		if err != nil {
			t.Fatal(err)
		}
		running := map[string]bool{}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running[p.Spec.NodeName] = true
			}
		}
		if want := len(nodes.Items); l.production {
			if _, err := kc.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{}); err == nil || len(pods.Items) > 0 {
				t.Errorf("the production profile must run without kube-proxy (DaemonSet: %v, %d pods)", err, len(pods.Items))
			}
		} else if len(running) != want {
			t.Errorf("kube-proxy Running on %v, want all %d nodes", running, want)
		}
		if l.production {
			if out := l.ssh(t, first, "grep -c -- '--secure-port=7443\\|--encryption-provider-config\\|--audit-policy-file' /etc/kubernetes/manifests/kube-apiserver.yaml"); strings.TrimSpace(out) != "3" {
				t.Errorf("shaolin's apiserver lacks the production flags (%s matches)", out)
			}
			// A Secret written before the promote: every apiserver must
			// read it afterwards, which needs the same encryption key.
			if _, err := kc.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "haadm-e2e-before"}, StringData: map[string]string{"k": "before"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			l.checkEncrypted(t, "haadm-e2e-before")
		}
		for n := range l.ips {
			if got := strings.TrimSpace(l.ssh(t, n, "hostname")); got != n {
				t.Errorf("ssh %s lands in %q", n, got)
			}
		}
	})

	if l.bastion {
		t.Run("bastion: the nodes take SSH only through gate, as lab", func(t *testing.T) {
			for n, ip := range l.ips {
				if c, err := net.DialTimeout("tcp", ip+":22", 3*time.Second); err == nil {
					c.Close()
					t.Errorf("%s: a TCP connection to port 22 straight from this machine was accepted", n)
				}
				if out, err := exec.Command("ssh", "-F", l.sshConfig, "-o", "ProxyJump=none", "-o", "ConnectTimeout=5", n, "true").CombinedOutput(); err == nil {
					t.Errorf("%s: ssh without the bastion got in\n%s", n, out)
				}
				if out, err := exec.Command("ssh", "-F", l.sshConfig, "-o", "User=root", n, "true").CombinedOutput(); err == nil {
					t.Errorf("%s: root logged in through the bastion\n%s", n, out)
				}
				out, err := exec.Command("ssh", "-F", l.sshConfig, n, "id -un").CombinedOutput()
				if err != nil || strings.TrimSpace(string(out)) != labUser {
					t.Errorf("%s: ssh through the bastion logs in as %q (%v), want %s", n, out, err, labUser)
				}
				if got := strings.TrimSpace(l.ssh(t, n, "id -un")); got != "root" {
					t.Errorf("%s: sudo -n runs as %q, want root", n, got)
				}
			}
		})
	}

	t.Run("status on the single master", func(t *testing.T) {
		r := l.run(t, "status")
		l.metrics["status_single_master_seconds"] = r.took.Seconds()
		if r.code != 2 || !strings.Contains(r.stdout, "single-master") {
			t.Errorf("status: exit %d, want 2 (single-master)\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("bad input is refused before any change", func(t *testing.T) {
		r := l.run(t, append([]string{"promote", "--nodes", "emei,kunlun"}, m.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, `"kunlun" is not a node`) {
			t.Errorf("unknown node: exit %d\n%s", r.code, r.stderr)
		}
		if m := l.members(t, first); len(m.Members) != 1 {
			t.Errorf("etcd changed by a refused promote")
		}
	})

	t.Run("dry run changes nothing", func(t *testing.T) {
		before := l.ssh(t, "emei", "ls -R /etc/kubernetes")
		r := l.run(t, m.promote("--dry-run")...)
		if r.code != 0 {
			t.Fatalf("dry run: exit %d\n%s", r.code, r.stderr)
		}
		for _, want := range []string{"[etcd] emei: etcd.yaml", "+++ b/etc/kubernetes/manifests/etcd.yaml", "/etc/kubernetes/pki/apiserver.crt: missing", "controlPlaneEndpoint " + endpoint, "(private key content changed"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("dry-run plan lacks %q", want)
			}
		}
		if after := l.ssh(t, "emei", "ls -R /etc/kubernetes"); after != before {
			t.Errorf("dry run changed emei's /etc/kubernetes:\n%s\n---\n%s", before, after)
		}
	})

	t.Run("phase certs alone", func(t *testing.T) {
		r := l.run(t, append([]string{"phase", "certs", "--nodes", "emei,wudang"}, m.args...)...)
		if r.code != 0 {
			t.Fatalf("phase certs: exit %d\n%s", r.code, r.stderr)
		}
		for _, f := range []string{"ca.key", "sa.key", "apiserver.crt", "etcd/peer.crt", "front-proxy-client.crt"} {
			l.ssh(t, "wudang", "test -s /etc/kubernetes/pki/"+f)
		}
		if out := l.ssh(t, "emei", "ls /etc/kubernetes/manifests 2>/dev/null || true"); strings.Contains(out, "etcd.yaml") {
			t.Errorf("phase certs went beyond certificates: emei has %s", out)
		}
	})

	if os.Getenv("E2E_INTERRUPT") != "" {
		t.Run("an interrupted promote resumes", func(t *testing.T) {
			// Stop haadm the moment wudang's learner exists: the hardest
			// place to resume from (a member etcd knows, maybe not started).
			r := l.runUntil(t, "[etcd] wudang: etcd learner https://"+l.ips["wudang"], m.promote()...)
			l.metrics["interrupted_promote_seconds"] = r.took.Seconds()
			if r.code == 0 {
				t.Fatalf("promote was not interrupted:\n%s", r.stderr)
			}
			t.Logf("interrupted after %s:\n%s", r.took.Round(time.Second), lastLines(r.stderr, 4))
		})
		t.Run("rollback of a half-promoted cluster", func(t *testing.T) {
			l.rollback(t, first, []string{"emei", "wudang"})
		})
		t.Run("a promote killed in each phase converges", func(t *testing.T) {
			l.faults(t, m)
		})
	}

	t.Run("promote", func(t *testing.T) {
		// Count API requests that fail while the promotion runs, against the
		// address every client used before: shaolin's apiserver.
		probe := l.kube(t, "https://"+l.ips[first]+":"+l.apiPort)
		var total, failed atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				total.Add(1)
				if _, err := probe.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
					failed.Add(1)
				}
			}
		})
		// The external layout as the usage line types it: no --lb-node,
		// emei being the first of --nodes.
		r := l.run(t, m.defaulted(m.promote())...)
		close(stop)
		wg.Wait()
		l.metrics["promote_seconds"] = r.took.Seconds()
		l.metrics["api_requests_during_promote"] = total.Load()
		l.metrics["api_requests_failed_during_promote"] = failed.Load()
		t.Logf("promote took %s; API requests failed during promote: %d of %d", r.took.Round(time.Second), failed.Load(), total.Load())
		if r.code != 0 {
			t.Fatalf("promote: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if m.name == "external" && !strings.Contains(r.stderr, "nginx on emei (the first of --nodes") {
			t.Errorf("promote without --lb-node does not say where the load balancer went:\n%s", r.stderr)
		}
		for _, phase := range []string{"[preflight]", "[backup]", "[certs]", "[host-files]", "[etcd]", "[control-plane]", "[mark]", "[lb]", "[kubelet]", "[cluster-config]"} {
			if !strings.Contains(r.stderr, phase) {
				t.Errorf("no progress line for %s", phase)
			}
		}
	})

	if l.bastion {
		// Root may not log in and lab only from gate: every SSH session
		// haadm had (and the test's own) is lab's from gate in sshd's log.
		t.Run("bastion: haadm logged in as lab through gate", func(t *testing.T) {
			for n := range l.ips {
				log := l.ssh(t, n, "cat /var/log/lab/sshd.log")
				if !strings.Contains(log, "Accepted publickey for "+labUser+" from "+gateIP+" ") {
					t.Errorf("%s: no SSH login of %s from the bastion in sshd's log", n, labUser)
				}
				for _, line := range strings.Split(log, "\n") {
					if strings.Contains(line, "Accepted ") && !strings.Contains(line, " for "+labUser+" from "+gateIP+" ") {
						t.Errorf("%s: a login that is not %s's from the bastion: %s", n, labUser, line)
					}
				}
			}
		})
	}

	t.Run("etcd has three started voters", func(t *testing.T) {
		m := l.members(t, "wudang")
		if len(m.Members) != 3 {
			t.Fatalf("%d members, want 3", len(m.Members))
		}
		for _, mem := range m.Members {
			if mem.Name == "" || mem.IsLearner {
				t.Errorf("member %x %q: learner=%v (want a started voter)", mem.ID, mem.Name, mem.IsLearner)
			}
		}
		if n := l.healthyMembers("emei"); n != 3 {
			t.Errorf("etcd: %d healthy members, want 3", n)
		}
	})

	t.Run("every apiserver is ready and serves the right SANs", func(t *testing.T) {
		for n, ip := range l.ips {
			out := l.ssh(t, n, "curl -sk --max-time 5 https://"+ip+":"+l.apiPort+"/readyz")
			if strings.TrimSpace(out) != "ok" {
				t.Errorf("%s /readyz: %q", n, out)
			}
			c := cert(t, l.ssh(t, n, "cat /etc/kubernetes/pki/apiserver.crt"))
			var ips []string
			for _, a := range c.IPAddresses {
				ips = append(ips, a.String())
			}
			for _, want := range append([]string{ip, "10.96.0.1"}, m.sanIPs...) {
				if !slices.Contains(ips, want) {
					t.Errorf("%s apiserver.crt lacks IP SAN %s (has %v)", n, want, ips)
				}
			}
			for _, want := range append([]string{n, "kubernetes.default.svc.cluster.local"}, m.sanDNS...) {
				if !slices.Contains(c.DNSNames, want) {
					t.Errorf("%s apiserver.crt lacks DNS SAN %s (has %v)", n, want, c.DNSNames)
				}
			}
		}
		if out := l.ssh(t, "wudang", "curl -s --max-time 5 --cacert /etc/kubernetes/pki/ca.crt https://"+endpoint+"/readyz"); strings.TrimSpace(out) != "ok" {
			t.Errorf("LB /readyz with CA verification: %q", out)
		}
	})

	t.Run("labels and taints", func(t *testing.T) {
		nodes, err := l.kube(t, "").CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes.Items {
			if _, master := l.ips[n.Name]; !master {
				continue // the spare node stays a worker for now
			}
			if _, ok := n.Labels["node-role.kubernetes.io/control-plane"]; !ok {
				t.Errorf("%s lacks the control-plane label", n.Name)
			}
			tainted := false
			for _, tt := range n.Spec.Taints {
				tainted = tainted || (tt.Key == "node-role.kubernetes.io/control-plane" && tt.Effect == corev1.TaintEffectNoSchedule)
			}
			if !tainted {
				t.Errorf("%s lacks the control-plane taint", n.Name)
			}
		}
	})

	t.Run("kubeconfigs and ConfigMaps point where they should", func(t *testing.T) {
		lb := "https://" + endpoint
		for n, ip := range l.ips {
			local := "https://" + ip + ":" + l.apiPort
			want := map[string]string{"admin.conf": lb, "kubelet.conf": local, "controller-manager.conf": local, "scheduler.conf": local}
			for f, w := range want {
				if got := server(t, l.ssh(t, n, "cat /etc/kubernetes/"+f)); got != w {
					t.Errorf("%s %s: server %s, want %s", n, f, got, w)
				}
			}
		}
		kc := l.kube(t, "")
		for _, o := range []struct{ ns, name, key string }{{"kube-system", "kube-proxy", "kubeconfig.conf"}, {"kube-public", "cluster-info", "kubeconfig"}} {
			if l.production && o.name == "kube-proxy" {
				continue
			}
			cm, err := kc.CoreV1().ConfigMaps(o.ns).Get(ctx, o.name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := server(t, cm.Data[o.key]); got != lb {
				t.Errorf("%s/%s: server %s, want %s", o.ns, o.name, got, lb)
			}
		}
		cm, err := kc.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(cm.Data["ClusterConfiguration"], "controlPlaneEndpoint: "+endpoint) {
			t.Errorf("kubeadm-config:\n%s", cm.Data["ClusterConfiguration"])
		}
		// A node joining now trusts cluster-info only through the bootstrap
		// token's signature over the new content.
		ci, err := kc.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		secrets, err := kc.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "type=bootstrap.kubernetes.io/token"})
		if err != nil {
			t.Fatal(err)
		}
		signed := 0
		for _, s := range secrets.Items {
			id := string(s.Data["token-id"])
			want, err := jws.ComputeDetachedSignature(ci.Data["kubeconfig"], id, string(s.Data["token-secret"]))
			if err != nil {
				t.Fatal(err)
			}
			if ci.Data["jws-kubeconfig-"+id] != want {
				t.Errorf("cluster-info signature for token %s does not match its new content", id)
			}
			signed++
		}
		if signed == 0 {
			t.Errorf("no bootstrap token: cannot prove cluster-info was re-signed")
		}
	})

	if l.production {
		t.Run("every apiserver shares the encryption key, audits and runs the scheduler config", func(t *testing.T) {
			for _, n := range []string{"shaolin", "emei", "wudang"} {
				kc := l.kube(t, "https://"+l.ips[n]+":"+l.apiPort)
				s, err := kc.CoreV1().Secrets("default").Get(ctx, "haadm-e2e-before", metav1.GetOptions{})
				if err != nil || string(s.Data["k"]) != "before" {
					t.Errorf("%s's apiserver reads the Secret written before the promote: %v %q", n, err, s.Data["k"])
				}
				name := "haadm-e2e-written-by-" + n
				if _, err := kc.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: map[string]string{"k": n}}, metav1.CreateOptions{}); err != nil {
					t.Errorf("%s's apiserver writes a Secret: %v", n, err)
					continue
				}
				l.checkEncrypted(t, name)
				if out := l.ssh(t, n, "test -s /var/log/kubernetes/audit/audit.log && grep -c haadm-e2e-written-by-"+n+" /var/log/kubernetes/audit/audit.log || echo 0"); strings.TrimSpace(out) == "0" {
					t.Errorf("%s's apiserver did not audit its write (audit.log: %s)", n, out)
				}
			}
			for _, n := range []string{"emei", "wudang"} {
				for _, f := range []string{"/etc/kubernetes/enc/enc.yaml", "/etc/kubernetes/audit/policy.yaml", "/etc/kubernetes/scheduler-config.yaml"} {
					if a, b := l.ssh(t, first, "sha256sum "+f+" | cut -d' ' -f1; stat -c %a "+f), l.ssh(t, n, "sha256sum "+f+" | cut -d' ' -f1; stat -c %a "+f); a != b {
						t.Errorf("%s %s: %q, shaolin has %q", n, f, b, a)
					}
				}
				// The scheduler runs with its --config file: its mirror pod is Ready.
				waitFor(t, 2*time.Minute, n+"'s kube-scheduler Ready", func() bool {
					p, err := l.kube(t, "").CoreV1().Pods("kube-system").Get(ctx, "kube-scheduler-"+n, metav1.GetOptions{})
					if err != nil {
						return false
					}
					for _, c := range p.Status.Conditions {
						if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
							return true
						}
					}
					return false
				})
			}
		})
	}

	t.Run("second promote and dry run find nothing to do", func(t *testing.T) {
		r := l.run(t, m.promote()...)
		if r.code != 0 {
			t.Fatalf("second promote: exit %d\n%s", r.code, r.stderr)
		}
		l.metrics["second_promote_seconds"] = r.took.Seconds()
		if !strings.Contains(r.stderr, "[plan]") || !strings.Contains(r.stderr, "nothing to do") || strings.Contains(r.stderr, "[backup]") {
			t.Errorf("second promote found work or took a backup:\n%s", r.stderr)
		}
		d := l.run(t, m.promote("--dry-run")...)
		l.metrics["noop_dry_run_seconds"] = d.took.Seconds()
		if d.code != 0 || strings.TrimSpace(d.stdout) != "dry run: nothing to do" {
			t.Errorf("dry run after promote: exit %d\n%s", d.code, d.stdout)
		}
	})

	if m.name == "vip" {
		t.Run("one master holds the virtual address, the one with the highest priority", func(t *testing.T) {
			var holders []string
			for _, n := range []string{first, "emei", "wudang"} {
				if strings.Contains(l.ssh(t, n, "ip -o addr show"), " "+vipAddr+"/") {
					holders = append(holders, n)
				}
				if out := strings.TrimSpace(l.ssh(t, n, "systemctl is-active keepalived "+m.engine+" || true")); out != "active\nactive" {
					t.Errorf("%s: keepalived and %s: %q, want both active", n, m.engine, out)
				}
			}
			if !slices.Equal(holders, []string{first}) {
				t.Errorf("the virtual address %s is held by %v, want %s alone", vipAddr, holders, first)
			}
		})
	}

	t.Run("status says ha", func(t *testing.T) {
		r := l.run(t, "status")
		l.metrics["status_ha_seconds"] = r.took.Seconds()
		if r.code != 0 {
			t.Errorf("status: exit %d, want 0\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		j := l.run(t, "status", "-o", "json")
		var rep struct {
			Verdict string `json:"verdict"`
		}
		if err := json.Unmarshal([]byte(j.stdout), &rep); err != nil || rep.Verdict != "ha" {
			t.Errorf("status -o json: verdict %q (%v)\n%s", rep.Verdict, err, j.stdout)
		}
	})

	t.Run("status names a stopped etcd", func(t *testing.T) {
		l.ssh(t, "wudang", "mv /etc/kubernetes/manifests/etcd.yaml /etc/kubernetes/etcd.yaml.stopped")
		defer func() {
			l.ssh(t, "wudang", "mv /etc/kubernetes/etcd.yaml.stopped /etc/kubernetes/manifests/etcd.yaml")
			waitFor(t, 3*time.Minute, "wudang's etcd healthy again", func() bool { return l.healthyMembers("emei") == 3 })
			// Its apiserver lost its local etcd and may be restarting: the
			// next test needs every apiserver back.
			waitFor(t, 3*time.Minute, "every apiserver ready again", func() bool {
				for n, ip := range l.ips {
					out, _ := l.sshCmd(n, "curl -sk --max-time 3 https://"+ip+":"+l.apiPort+"/readyz").CombinedOutput()
					if strings.TrimSpace(string(out)) != "ok" {
						return false
					}
				}
				return true
			})
		}()
		waitFor(t, 2*time.Minute, "wudang's etcd down", func() bool {
			out, _ := l.sshCmd("wudang", "ss -Htln 'sport = :2379'").CombinedOutput()
			return strings.TrimSpace(string(out)) == ""
		})
		r := l.run(t, "status")
		l.metrics["status_degraded_seconds"] = r.took.Seconds()
		if r.code == 0 || !strings.Contains(r.stdout, "degraded") || !strings.Contains(r.stdout, "wudang") {
			t.Errorf("status with wudang's etcd stopped: exit %d\n%s", r.code, r.stdout)
		}
	})

	t.Run("the API survives the loss of shaolin", func(t *testing.T) {
		read, write := l.apiThroughLB(t, m)
		if err := read(); err != nil {
			t.Fatalf("API through the LB before the cut: %v", err)
		}
		cut := exec.Command("ip", "-n", "haadm-"+first, "link", "set", "eth0", "down")
		if out, err := cut.CombinedOutput(); err != nil {
			t.Fatalf("cutting %s off: %v %s", first, err, out)
		}
		defer exec.Command("ip", "-n", "haadm-"+first, "link", "set", "eth0", "up").Run()
		t0 := time.Now()
		var readOK, writeOK time.Duration
		// node-local's requests go over ssh (through the bastion there):
		// one every 100 ms would be throttled by sshd's MaxStartups.
		every := 100 * time.Millisecond
		if m.name == "node-local" {
			every = 500 * time.Millisecond
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			readOK = probe.FirstSuccess(t.Context(), t0, every, 2*time.Minute, func(int) error { return read() })
		})
		wg.Go(func() {
			writeOK = probe.FirstSuccess(t.Context(), t0, every, 2*time.Minute, func(i int) error { return write(fmt.Sprintf("haadm-e2e-failover-%d", i)) })
		})
		wg.Wait()
		l.metrics["failover_read_seconds"] = readOK.Seconds()
		l.metrics["failover_write_seconds"] = writeOK.Seconds()
		t.Logf("with shaolin cut off: first read after %s, first write after %s", readOK, writeOK)
		if readOK < 0 || writeOK < 0 {
			t.Fatalf("API through the LB did not answer within 2 minutes of losing shaolin (read %v, write %v)", readOK, writeOK)
		}
		// Writes must go on working, not just once.
		for i := 0; i < 10; i++ {
			if err := write(fmt.Sprintf("haadm-e2e-after-%d", i)); err != nil {
				t.Errorf("write %d after failover: %v", i, err)
			}
		}
		server := "https://" + endpoint
		if m.name == "node-local" {
			server = "https://10.250.0.12:" + l.apiPort // the endpoint is each node's own localhost
		}
		r := l.run(t, "status", "--kubeconfig", kubeconfigFor(t, l, server), "--probe-timeout", "2s")
		l.metrics["status_node_cut_off_seconds"] = r.took.Seconds()
		if r.code == 0 || !strings.Contains(r.stdout, first) {
			t.Errorf("status with shaolin cut off: exit %d\n%s", r.code, r.stdout)
		}
	})

	if os.Getenv("E2E_DAY2") != "" {
		l.day2(t, m)
	}
	if l.spare == "" {
		return
	}
	// From here on shaolin is lost for good; clients use emei's apiserver
	// (node-local: the endpoint is each node's own localhost).
	survivor := kubeconfigFor(t, l, "https://"+l.ips["emei"]+":"+l.apiPort)
	if m.name != "node-local" {
		survivor = kubeconfigFor(t, l, "https://"+endpoint)
	}
	t.Run("a dead shaolin is removed and huashan takes its place", func(t *testing.T) {
		if out, err := exec.Command("ip", "-n", "haadm-"+first, "link", "set", "eth0", "down").CombinedOutput(); err != nil {
			t.Fatalf("cutting %s off: %v %s", first, err, out)
		}
		read, write := l.apiThroughLB(t, m)
		waitFor(t, 2*time.Minute, "the API through the LB without shaolin", func() bool {
			return read() == nil && write(fmt.Sprintf("haadm-e2e-remove-%d", time.Now().UnixNano())) == nil
		})
		probe := l.writeProbe(func(i int) error { return write(fmt.Sprintf("haadm-e2e-probe-%d-%d", time.Now().Unix(), i)) })

		r := l.run(t, "--kubeconfig", survivor, "remove", first)
		if r.code == 0 || !strings.Contains(r.stderr, "--force") {
			t.Fatalf("remove of an unreachable master without --force: exit %d, want a refusal naming --force\n%s", r.code, r.stderr)
		}
		if n := len(l.members(t, "emei").Members); n != 3 {
			t.Fatalf("a refused remove changed etcd: %d members", n)
		}
		r = l.run(t, "--kubeconfig", survivor, "remove", first, "--force")
		l.metrics["remove_dead_seconds"] = r.took.Seconds()
		if r.code != 0 {
			t.Fatalf("remove %s --force: exit %d\n%s\n%s", first, r.code, r.stdout, r.stderr)
		}
		t.Logf("remove of dead %s took %s", first, r.took.Round(100*time.Millisecond))
		if ms := l.members(t, "emei"); len(ms.Members) != 2 || slices.ContainsFunc(ms.Members, func(x etcdMember) bool { return x.Name == first }) {
			t.Errorf("etcd after remove: %+v", ms)
		}
		if _, err := l.kubeAt(t, survivor).CoreV1().Nodes().Get(ctx, first, metav1.GetOptions{}); err == nil {
			t.Errorf("Node %s still exists after remove", first)
		}
		lbNodes := []string{lbNode}
		if m.name == "node-local" {
			lbNodes = []string{"emei", "wudang", l.spare}
		}
		for _, n := range lbNodes {
			if conf := l.ssh(t, n, "cat "+m.lbConf()); strings.Contains(conf, l.ips[first]+":") {
				t.Errorf("%s on %s still sends to %s", m.engine, n, first)
			}
		}
		again := l.run(t, "--kubeconfig", survivor, "remove", first, "--force")
		if again.code != 0 || !strings.Contains(again.stderr, "nothing to do") {
			t.Errorf("second remove: exit %d, want nothing to do\n%s", again.code, again.stderr)
		}

		// Without --lb-node, the load balancer stays where the endpoint is.
		r = l.run(t, append([]string{"--kubeconfig", survivor}, m.defaulted(m.promoteNodes(l.spare))...)...)
		l.metrics["promote_replacement_seconds"] = r.took.Seconds()
		if r.code != 0 {
			t.Fatalf("promote %s from the survivors: exit %d\n%s\n%s", l.spare, r.code, r.stdout, r.stderr)
		}
		ms := l.members(t, "emei")
		voters := 0
		for _, x := range ms.Members {
			if !x.IsLearner && x.Name != "" {
				voters++
			}
		}
		if voters != 3 {
			t.Errorf("etcd after promoting %s: %d started voters, want 3: %+v", l.spare, voters, ms)
		}
		if st := l.run(t, "--kubeconfig", survivor, "status"); st.code != 0 {
			t.Errorf("status after replacing shaolin: exit %d\n%s", st.code, st.stdout)
		}
		total, failed, _ := probe()
		l.metrics["writes_during_remove_and_replace"] = total
		l.metrics["writes_failed_during_remove_and_replace"] = failed
		t.Logf("API writes through the LB during remove and promote: %d failed of %d", failed, total)
		if failed > 0 {
			t.Errorf("%d of %d API writes through the LB failed during remove and promote", failed, total)
		}
	})

	backups := filepath.Join(t.TempDir(), "backups")
	emei := kubeconfigFor(t, l, "https://"+l.ips["emei"]+":"+l.apiPort)
	t.Run("rollback of a fully promoted cluster, then promote again", func(t *testing.T) {
		l.kubeconfig = emei
		l.rollback(t, "emei", []string{"wudang", l.spare})
		r := l.run(t, append(m.promoteNodes("wudang", l.spare), "--backup-dir", backups)...)
		l.metrics["promote_after_rollback_seconds"] = r.took.Seconds()
		if r.code != 0 {
			t.Fatalf("promote after rollback: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if st := l.run(t, "status"); st.code != 0 {
			t.Errorf("status after promoting again: exit %d\n%s", st.code, st.stdout)
		}
	})

	t.Run("restore the backup taken before that promote", func(t *testing.T) {
		dirs, _ := filepath.Glob(filepath.Join(backups, "2*"))
		if len(dirs) == 0 {
			t.Fatalf("no backup in %s", backups)
		}
		kc := l.kubeAt(t, l.kubeconfig)
		if _, err := kc.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "haadm-e2e-after-backup"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		r := l.run(t, "restore", dirs[len(dirs)-1])
		l.metrics["restore_seconds"] = r.took.Seconds()
		t.Logf("restore took %s", r.took.Round(100*time.Millisecond))
		if r.code != 0 {
			t.Fatalf("restore: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if ms := l.members(t, "emei"); len(ms.Members) != 1 {
			t.Errorf("etcd after restore: %+v, want emei alone", ms)
		}
		for _, w := range []string{"wudang", l.spare} {
			if out := l.ssh(t, w, "ls -A /var/lib/etcd; ls -A /etc/kubernetes/manifests 2>/dev/null; true"); strings.TrimSpace(out) != "" {
				t.Errorf("%s, a worker in the backup, keeps etcd data or static pods after the restore: %q\n%s\n%s", w, out,
					l.ssh(t, w, "ls -la /var/lib/etcd* /etc/kubernetes/haadm-restore-* 2>&1; ps -eo pid,etime,args | grep [e]tcd | cut -c1-200"), lastLines(r.stderr, 30))
			}
		}
		waitFor(t, 3*time.Minute, "every node Ready after the restore", func() bool {
			nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return false
			}
			for _, n := range nodes.Items {
				if !ready(n) {
					return false
				}
			}
			return len(nodes.Items) == 3
		})
		if _, err := kc.CoreV1().ConfigMaps("default").Get(ctx, "haadm-e2e-after-backup", metav1.GetOptions{}); err == nil {
			t.Errorf("a ConfigMap written after the backup survived its restore")
		}
		if st := l.run(t, "status"); st.code != 2 || !strings.Contains(st.stdout, "single-master") {
			t.Errorf("status after restore: exit %d, want 2 (single-master)\n%s", st.code, st.stdout)
		}
		r = l.run(t, m.promoteNodes("wudang", l.spare)...)
		if r.code != 0 {
			t.Fatalf("promote after restore: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if st := l.run(t, "status"); st.code != 0 {
			t.Errorf("status after promoting the restored cluster: exit %d\n%s", st.code, st.stdout)
		}
	})
}

// spareNodes is the fourth node, when the lab has one.
func (l *lab) spareNodes() []string {
	if l.spare == "" {
		return nil
	}
	return []string{l.spare}
}

// kubeAt is a client for the kubeconfig at path.
func (l *lab) kubeAt(t *testing.T, path string) kubernetes.Interface {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 5 * time.Second
	// No client-side rate limit: the failover probes start ten requests a
	// second, and client-go's default (5 a second) queued them for many
	// seconds, which the figures then counted as failover.
	cfg.QPS = -1
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// writeProbe runs op every 200 ms until the returned function is called,
// which stops it and says how many runs were tried and failed, and the
// first failure.
func (l *lab) writeProbe(op func(i int) error) func() (total, failed int64, first string) {
	var tot, bad atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			tot.Add(1)
			if err := op(i); err != nil {
				bad.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}
	})
	return func() (int64, int64, string) {
		close(stop)
		wg.Wait()
		first, _ := firstErr.Load().(string)
		return tot.Load(), bad.Load(), first
	}
}

// rollback runs haadm rollback and checks the cluster is the single master
// stays again, the others workers pointed at it, and that a second
// rollback finds nothing to do.
func (l *lab) rollback(t *testing.T, stays string, workers []string) {
	t.Helper()
	ctx := context.Background()
	r := l.run(t, "rollback")
	l.metrics["rollback_seconds_"+stays] = r.took.Seconds()
	if r.code != 0 {
		t.Fatalf("rollback: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("rollback to %s took %s", stays, r.took.Round(100*time.Millisecond))
	ms := l.members(t, stays)
	if len(ms.Members) != 1 || ms.Members[0].Name != stays {
		t.Errorf("etcd after rollback: %+v, want %s alone", ms, stays)
	}
	kc := l.kubeAt(t, l.kubeconfig)
	own := "https://" + l.ips[stays] + ":" + l.apiPort
	if l.ips[stays] == "" && stays == "huashan" {
		own = "https://10.250.0.14:" + l.apiPort
	}
	for _, w := range workers {
		n, err := kc.CoreV1().Nodes().Get(ctx, w, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, cp := n.Labels["node-role.kubernetes.io/control-plane"]; cp || slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == "node-role.kubernetes.io/control-plane" }) {
			t.Errorf("%s is still marked a control plane: %v %v", w, n.Labels, n.Spec.Taints)
		}
		if got := server(t, l.ssh(t, w, "cat /etc/kubernetes/kubelet.conf")); got != own {
			t.Errorf("%s's kubelet.conf points at %s, want %s", w, got, own)
		}
		if out := l.ssh(t, w, "ls -A /etc/kubernetes/manifests 2>/dev/null; ls -A /var/lib/etcd 2>/dev/null; ls /etc/kubernetes/pki"); strings.TrimSpace(out) != "ca.crt" {
			t.Errorf("%s keeps control-plane files after rollback: %q", w, out)
		}
		for _, svc := range []string{"nginx", "haproxy", "keepalived"} {
			if out := l.ssh(t, w, "systemctl is-active "+svc+" || true"); strings.TrimSpace(out) == "active" {
				t.Errorf("%s still runs on %s after rollback", svc, w)
			}
		}
	}
	cm, err := kc.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cm.Data["ClusterConfiguration"], "controlPlaneEndpoint") {
		t.Errorf("kubeadm-config keeps a controlPlaneEndpoint after rollback")
	}
	ci, err := kc.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := server(t, ci.Data["kubeconfig"]); got != own {
		t.Errorf("cluster-info points at %s, want %s", got, own)
	}
	st := l.run(t, "status")
	if st.code != 2 || !strings.Contains(st.stdout, "single-master") {
		t.Errorf("status after rollback: exit %d, want 2 (single-master)\n%s", st.code, st.stdout)
	}
	again := l.run(t, "rollback")
	if again.code != 0 || !strings.Contains(again.stderr, "nothing to do") {
		t.Errorf("second rollback: exit %d, want nothing to do\n%s", again.code, again.stderr)
	}
}

// faults breaks a promote at a point of each phase: haadm killed
// (SIGKILL: no cleanup at all), or with E2E_FAULTS=all also its SSH
// sessions cut and a target's containerd or kubelet restarted. After each
// fault etcd must still have every started voter healthy (quorum never at
// risk): at once, or, for a fault after the etcd phase, within 15 s, since
// a promote leaves the last member's first publish (up to 7 s after a
// snapshot) to its apiserver's start; the same promote run again must converge (three started voters,
// no learner left); a rollback then returns the cluster to shaolin alone
// for the next fault. The table of faults goes to the test log and the
// metrics.
func (l *lab) faults(t *testing.T, m mode) {
	type fault struct {
		name, marker string
		act          func(cmd *exec.Cmd)
		// afterEtcd: the fault comes after the last promotion, which the
		// member may not serve yet.
		afterEtcd bool
	}
	kill := func(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
	on := func(node, c string) func(*exec.Cmd) {
		return func(*exec.Cmd) { _ = l.sshCmd(node, c).Run() }
	}
	list := []fault{
		{"SIGKILL in certs", "[certs] emei:", kill, false},
		{"SIGKILL with wudang's learner added", "[etcd] wudang: etcd learner", kill, false},
		{"SIGKILL in control-plane", "[control-plane] emei:", kill, true},
	}
	if os.Getenv("E2E_FAULTS") == "all" {
		list = append(list,
			fault{"SIGKILL while emei's etcd starts", "[etcd] emei: etcd.yaml", kill, false},
			fault{"SIGKILL in lb", "[lb] ", kill, true},
			fault{"SIGKILL in kubelet", "[kubelet] ", kill, true},
			fault{"emei's SSH sessions cut in etcd", "[etcd] emei: etcd.yaml", on("emei", "pkill -f 'sshd: .*notty' || true"), false},
			fault{"wudang's containerd restarted in etcd", "[etcd] wudang: etcd learner", on("wudang", "systemctl restart containerd"), false},
			fault{"wudang's kubelet restarted in control-plane", "[control-plane] wudang:", on("wudang", "systemctl restart kubelet"), true},
		)
	}
	rows := []string{fmt.Sprintf("%-45s %-6s %-10s %-41s %-9s %s", "FAULT", "EXIT", "AT", "ETCD AFTER", "CONVERGE", "ROLLBACK")}
	for _, f := range list {
		r := l.runUntilDo(t, f.marker, f.act, m.promote()...)
		if !r.acted {
			t.Errorf("%s: the promote never printed %q, so the fault was not injected:\n%s", f.name, f.marker, lastLines(r.stderr, 5))
		}
		var healthy, voters int
		var settled time.Duration
		for t0 := time.Now(); ; time.Sleep(500 * time.Millisecond) {
			healthy, voters, settled = l.healthyMembers(first), l.startedVoters(t), time.Since(t0)
			if healthy >= voters || !f.afterEtcd || settled > 15*time.Second {
				break
			}
		}
		if healthy < voters {
			t.Errorf("%s: etcd has %d healthy of %d started voters %.1fs after the fault", f.name, healthy, voters, settled.Seconds())
		}
		again := l.run(t, m.promote()...)
		if again.code != 0 {
			t.Errorf("%s: the same promote run again: exit %d\n%s", f.name, again.code, lastLines(again.stderr, 8))
		}
		ms := l.members(t, first)
		learners := slices.ContainsFunc(ms.Members, func(x etcdMember) bool { return x.IsLearner || x.Name == "" })
		if l.startedVoters(t) != 3 || learners {
			t.Errorf("%s: etcd after the re-run: %+v, want three started voters", f.name, ms)
		}
		// Back to shaolin alone: the next fault, and the promote test
		// after the last, start from the single master again.
		b := l.run(t, "rollback")
		if b.code != 0 {
			t.Fatalf("%s: rollback after the re-run: exit %d\n%s", f.name, b.code, lastLines(b.stderr, 8))
		}
		rb := fmt.Sprintf("%.1fs", b.took.Seconds())
		rows = append(rows, fmt.Sprintf("%-45s %-6d %-10s %-41s %-9s %s", f.name, r.code, fmt.Sprintf("%.1fs", r.took.Seconds()),
			fmt.Sprintf("%d healthy of %d started voters in %.1fs", healthy, voters, settled.Seconds()), fmt.Sprintf("%.1fs", again.took.Seconds()), rb))
	}
	t.Logf("faults:\n%s", strings.Join(rows, "\n"))
	l.metrics["faults"] = rows
}

// startedVoters counts etcd members that are started voters.
func (l *lab) startedVoters(t *testing.T) int {
	n := 0
	for _, x := range l.members(t, first).Members {
		if !x.IsLearner && x.Name != "" {
			n++
		}
	}
	return n
}

// runUntilDo runs haadm and calls act (kill it, cut a connection...) once a
// line of its progress contains marker; haadm then runs to its end.
func (l *lab) runUntilDo(t *testing.T, marker string, act func(cmd *exec.Cmd), args ...string) result {
	t.Helper()
	all := append([]string{"--kubeconfig", l.kubeconfig, "--ssh-config", l.sshConfig, "--log-file", filepath.Join(t.TempDir(), "haadm.log")}, args...)
	cmd := exec.Command(l.haadm, all...)
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var se strings.Builder
	sc := bufio.NewScanner(stderr)
	done := false
	for sc.Scan() {
		se.WriteString(sc.Text() + "\n")
		if !done && strings.Contains(sc.Text(), marker) {
			done = true
			act(cmd)
		}
	}
	err = cmd.Wait()
	r := result{stderr: se.String(), took: time.Since(t0), acted: done}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	}
	return r
}

// apiThroughLB returns a read and a write of the API through the load
// balancer: from this machine for an external LB, and from inside emei,
// through its own nginx, with the node's admin.conf in node-local mode.
func (l *lab) apiThroughLB(t *testing.T, m mode) (read func() error, write func(name string) error) {
	ctx := context.Background()
	if m.name == "node-local" {
		kubectl := func(args string) error {
			out, err := l.sshCmd(lbNode, "kubectl --kubeconfig /etc/kubernetes/admin.conf --request-timeout=5s "+args).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}
		return func() error { return kubectl("get nodes") },
			func(name string) error { return kubectl("create configmap -n default " + name) }
	}
	// A connection of its own per request, as a client's next request
	// after a failure would open: a kept-alive one is pinned, through a
	// stream proxy, to the backend it was opened to, and through a virtual
	// address to the old holder; either dies with that master, and the
	// figure would be the client's timeout, not the failover's.
	return func() error {
			_, err := l.freshKube(t, "https://"+m.endpoint).CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			return err
		}, func(name string) error {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
			_, err := l.freshKube(t, "https://"+m.endpoint).CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
			return err
		}
}

// kubeconfigFor is the operator's kubeconfig pointed at server.
func kubeconfigFor(t *testing.T, l *lab, server string) string {
	cfg, err := clientcmd.LoadFromFile(l.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = server
	}
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func ready(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(2 * time.Second)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}
