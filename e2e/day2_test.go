//go:build e2e

package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// labIgnore is what the lab's nodes cannot pass of kubeadm's preflight: no
// systemd, swap, no br_netfilter, no crictl (lab/lab.sh joins with it too).
const labIgnore = "SystemVerification,Swap,FileContent--proc-sys-net-bridge-bridge-nf-call-iptables,FileExisting-crictl"

// day2 is what operators do with kubeadm once haadm is done, on the
// promoted cluster (E2E_DAY2, a lab with a node not joined, E2E_JOINER, and
// E2E_UPGRADE_TO's packages on every node): kubeadm's own e2e suite,
// `kubeadm certs renew`, an upgrade of every master to the newer version,
// then `kubeadm join --control-plane` of the spare node through the
// endpoint (haadm puts it behind the load balancer), after which haadm
// has nothing left to do. The API is read and written through the load
// balancer all along, and each step's failed requests are reported;
// `haadm status` must say ha after each.
func (l *lab) day2(t *testing.T, m mode) {
	ctx := context.Background()
	joiner, joinerIP := os.Getenv("E2E_JOINER"), os.Getenv("E2E_JOINER_IP")
	upgradeTo, suite := os.Getenv("E2E_UPGRADE_TO"), os.Getenv("E2E_KUBEADM_SUITE")
	if joiner == "" || joinerIP == "" || suite == "" {
		t.Fatalf("E2E_DAY2 needs E2E_JOINER and E2E_JOINER_IP (a lab node not joined) and E2E_KUBEADM_SUITE (lab/lab.sh e2e-kubeadm)")
	}
	// The failover test before this one had shaolin cut off, and the
	// admin kubeconfig talks to shaolin: every member and apiserver back
	// first, the list of masters read once the API answers there again.
	var masters []string
	waitFor(t, 3*time.Minute, "the API, etcd and every apiserver back", func() bool {
		ms, err := l.listControlPlane()
		if err != nil {
			return false
		}
		masters = ms
		if slices.Contains(masters, joiner) { // a re-run on a lab that went further
			l.ips[joiner] = joinerIP
		}
		return l.healthyMembers("emei") == len(masters) && l.apiserversReady(masters)
	})
	read, write := l.apiThroughLB(t, m)
	haStatus := func(t *testing.T, after string) {
		t.Helper()
		r := l.run(t, "status")
		if r.code != 0 {
			t.Errorf("status after %s: exit %d, want 0 (ha)\n%s\n%s", after, r.code, r.stdout, r.stderr)
		}
	}

	var certKey string
	t.Run("day 2: kubeadm's own e2e suite passes", func(t *testing.T) {
		l.throughLB(t, "e2e_kubeadm", read, write, func() {
			// kubeadm-certs, which [copy-certs] checks and a control-plane
			// join needs, exists only while a certificate key is fresh.
			// The node's address comes in a configuration file: kubeadm
			// would take it from the default route, and the lab has none.
			out := l.ssh(t, first, "printf 'apiVersion: kubeadm.k8s.io/v1beta4\\nkind: InitConfiguration\\nlocalAPIEndpoint:\\n  advertiseAddress: "+l.ips[first]+"\\n' > /tmp/upload-certs.yaml && "+
				"kubeadm init phase upload-certs --upload-certs --config /tmp/upload-certs.yaml 2>&1")
			certKey = lastField(out)
			if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(certKey) {
				t.Fatalf("upload-certs printed no certificate key:\n%s", out)
			}
			l.kubeadmSuite(t, suite)
		})
		haStatus(t, "kubeadm's e2e suite")
	})

	t.Run("day 2: kubeadm certs renew keeps the load balancer's names", func(t *testing.T) {
		l.throughLB(t, "certs_renew", read, write, func() {
			for _, n := range masters {
				before := cert(t, l.ssh(t, n, "cat /etc/kubernetes/pki/apiserver.crt"))
				what := "apiserver"
				if n == "emei" {
					what = "all" // the kubeconfigs too, on a master haadm made
				}
				l.ssh(t, n, "kubeadm certs renew "+what+" 2>&1")
				after := cert(t, l.ssh(t, n, "cat /etc/kubernetes/pki/apiserver.crt"))
				if !after.NotBefore.After(before.NotBefore) {
					t.Errorf("%s: kubeadm certs renew %s did not renew apiserver.crt (NotBefore %s, was %s)", n, what, after.NotBefore, before.NotBefore)
				}
				if a, b := sans(after), sans(before); !slices.Equal(a, b) {
					t.Errorf("%s: renewed apiserver.crt has SANs %v, it had %v", n, a, b)
				}
				for _, want := range append(slices.Clone(m.sanIPs), m.sanDNS...) {
					if !slices.Contains(sans(after), want) {
						t.Errorf("%s: renewed apiserver.crt lacks the load balancer's %s", n, want)
					}
				}
			}
		})
		haStatus(t, "kubeadm certs renew")
	})

	t.Run("day 2: kubeadm upgrade of every master to "+upgradeTo, func(t *testing.T) {
		if upgradeTo == "" {
			t.Skip("no E2E_UPGRADE_TO")
		}
		masters := l.controlPlaneNodes(t)
		l.throughLB(t, "upgrade", read, write, func() {
			// As kubeadm's upgrade guide does it: the first master applies,
			// the others upgrade as nodes; each node's kubelet after its
			// control plane.
			for i, n := range masters {
				t0 := time.Now()
				l.ssh(t, n, "lab-install "+upgradeTo+" kubeadm")
				if i == 0 {
					// Its CoreDNS checks fail on a cluster without CoreDNS
					// (the lab's), though kubeadm-config says dns disabled.
					l.sshTimed(t, n, "kubeadm upgrade apply "+upgradeTo+" --yes --ignore-preflight-errors="+labIgnore+",CoreDNSUnsupportedPlugins,CoreDNSMigration 2>&1")
				} else {
					l.sshTimed(t, n, "kubeadm upgrade node --ignore-preflight-errors="+labIgnore+" 2>&1")
				}
				l.ssh(t, n, "lab-install "+upgradeTo+" kubelet kubectl && systemctl restart kubelet")
				waitFor(t, 3*time.Minute, n+"'s kubelet on "+upgradeTo+" and every apiserver ready", func() bool {
					node, err := l.kube(t, "").CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
					return err == nil && node.Status.NodeInfo.KubeletVersion == upgradeTo && ready(*node) && l.apiserversReady(masters)
				})
				l.metrics["day2_upgrade_"+n+"_seconds"] = time.Since(t0).Seconds()
				t.Logf("%s upgraded to %s in %s", n, upgradeTo, time.Since(t0).Round(time.Second))
			}
		})
		etcdVersion := etcdImageVersion(t, l.ssh(t, "emei", "kubeadm config images list --kubernetes-version "+upgradeTo))
		waitFor(t, 3*time.Minute, "every etcd member healthy on "+etcdVersion, func() bool {
			return l.healthyMembers(first) == len(masters)
		})
		for _, n := range masters {
			kc := l.kube(t, "https://"+l.ips[n]+":"+l.apiPort)
			v, err := kc.Discovery().ServerVersion()
			if err != nil || v.GitVersion != upgradeTo {
				t.Errorf("%s's apiserver: version %v (%v), want %s", n, v, err, upgradeTo)
			}
			out := l.ssh(t, n, etcdctlFlags+"endpoint status -w json 2>/dev/null")
			if !strings.Contains(out, `"version":"`+strings.TrimPrefix(etcdVersion, "v")+`"`) {
				t.Errorf("%s's etcd is not on %s: %s", n, etcdVersion, out)
			}
			node, err := l.kube(t, "").CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil || node.Status.NodeInfo.KubeletVersion != upgradeTo {
				t.Errorf("%s's kubelet is not on %s: %v", n, upgradeTo, err)
			}
			for _, f := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
				if out := l.ssh(t, n, "grep -h 'image:' /etc/kubernetes/manifests/"+f+".yaml"); !strings.Contains(out, ":"+upgradeTo) {
					t.Errorf("%s's %s manifest: %s, want %s", n, f, strings.TrimSpace(out), upgradeTo)
				}
			}
			for _, want := range m.sanIPs {
				if c := cert(t, l.ssh(t, n, "cat /etc/kubernetes/pki/apiserver.crt")); !slices.Contains(sans(c), want) {
					t.Errorf("%s's apiserver.crt after the upgrade lacks the load balancer's %s", n, want)
				}
			}
		}
		cm, err := l.kube(t, "").CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
		if err != nil || !strings.Contains(cm.Data["ClusterConfiguration"], "kubernetesVersion: "+upgradeTo) ||
			!strings.Contains(cm.Data["ClusterConfiguration"], "controlPlaneEndpoint: "+m.endpoint) {
			t.Errorf("kubeadm-config after the upgrade (%v):\n%s", err, cm.Data["ClusterConfiguration"])
		}
		haStatus(t, "the upgrade")
	})

	t.Run("day 2: kubeadm join --control-plane through the endpoint", func(t *testing.T) {
		if certKey == "" {
			t.Fatal("no certificate key: upload-certs failed above")
		}
		l.throughLB(t, "kubeadm_join", read, write, func() {
			if upgradeTo != "" {
				// A new machine comes with the packages the cluster runs now.
				l.ssh(t, joiner, "lab-install "+upgradeTo+" kubeadm kubelet kubectl")
			}
			join := strings.TrimSpace(l.ssh(t, first, "kubeadm token create --ttl 15m --print-join-command"))
			if !strings.Contains(join, " "+m.endpoint+" ") {
				t.Errorf("the join command does not go through the endpoint %s: %s", m.endpoint, join)
			}
			r := l.sshTimed(t, joiner, join+" --control-plane --certificate-key "+certKey+" --apiserver-advertise-address "+joinerIP+
				" --cri-socket unix:///run/containerd/containerd.sock --ignore-preflight-errors="+labIgnore+" 2>&1")
			l.metrics["day2_kubeadm_join_seconds"] = r.Seconds()
			t.Logf("kubeadm join --control-plane of %s took %s", joiner, r.Round(100*time.Millisecond))
		})
		l.ips[joiner] = joinerIP
		if !slices.Contains(masters, joiner) {
			masters = append(masters, joiner)
		}
		// kubeadm join returns before the kubelet has posted Ready (15 s
		// later in the lab), and haadm, rightly, promotes no node that is
		// not Ready: wait as an operator watching kubectl get nodes would.
		waitFor(t, 3*time.Minute, joiner+" Ready, its etcd a started voter and its apiserver ready", func() bool {
			n, err := l.kube(t, "").CoreV1().Nodes().Get(ctx, joiner, metav1.GetOptions{})
			return err == nil && ready(*n) && l.healthyMembers(first) == len(masters) && l.apiserversReady(masters)
		})
		if ms := l.members(t, first); len(ms.Members) != 4 || slices.ContainsFunc(ms.Members, func(x etcdMember) bool { return x.IsLearner }) {
			t.Errorf("etcd after the join: %+v, want 4 voters", ms)
		}
		for _, want := range m.sanIPs {
			if c := cert(t, l.ssh(t, joiner, "cat /etc/kubernetes/pki/apiserver.crt")); !slices.Contains(sans(c), want) {
				t.Errorf("%s's apiserver.crt (made by kubeadm join) lacks %s: %v", joiner, want, sans(c))
			}
		}
		// kubeadm knows nothing of the load balancer: the new master is not
		// behind it until haadm puts it there, and status says so.
		st := l.run(t, "status")
		if m.name != "external" && (st.code == 0 || !strings.Contains(st.stdout, joiner)) {
			t.Errorf("status with %s joined by kubeadm, not behind the load balancer: exit %d\n%s", joiner, st.code, st.stdout)
		}
		t.Logf("status after the kubeadm join: exit %d\n%s", st.code, lastLines(st.stdout, 12))
		r := l.run(t, m.promoteNodes("emei", "wudang", joiner)...)
		l.metrics["day2_promote_after_join_seconds"] = r.took.Seconds()
		if r.code != 0 {
			t.Fatalf("promote after kubeadm join: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		t.Logf("haadm promote after the kubeadm join took %s:\n%s", r.took.Round(100*time.Millisecond), lastLines(r.stderr, 15))
		haStatus(t, "kubeadm join and haadm promote")
	})

	t.Run("day 2: haadm after kubeadm has nothing left to do", func(t *testing.T) {
		r := l.run(t, m.promoteNodes("emei", "wudang", joiner)...)
		if r.code != 0 || !strings.Contains(r.stderr, "nothing to do") {
			t.Errorf("promote after kubeadm's upgrade and join: exit %d, want nothing to do\n%s", r.code, lastLines(r.stderr, 20))
		}
	})
}

// kubeadmSuite runs kubeadm's e2e_kubeadm suite against the cluster and
// fails on any failed spec. Only what the lab never installs is skipped:
// the DNS addon (the lab runs without CoreDNS) and kube-proxy when the
// profile has none, both off in kubeadm-config as kubeadm itself records.
func (l *lab) kubeadmSuite(t *testing.T, suite string) {
	t.Helper()
	cm, err := l.kube(t, "").CoreV1().ConfigMaps("kube-system").Get(context.Background(), "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var skip []string
	cc := cm.Data["ClusterConfiguration"]
	if regexp.MustCompile(`(?m)^dns:\n(  .*\n)*  disabled: true`).MatchString(cc) {
		skip = append(skip, `DNS addon`)
	}
	if regexp.MustCompile(`(?m)^proxy:\n(  .*\n)*  disabled: true`).MatchString(cc) {
		skip = append(skip, `proxy addon`)
	}
	args := []string{"--kubeconfig", l.kubeconfig, "--ginkgo.no-color", "--ginkgo.timeout", "10m", "--report-dir", t.TempDir()}
	if len(skip) > 0 {
		args = append(args, "--ginkgo.skip", strings.Join(skip, "|"))
	}
	cmd := exec.Command(suite, args...)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	l.metrics["day2_e2e_kubeadm_seconds"] = time.Since(t0).Seconds()
	summary := regexp.MustCompile(`Ran (\d+) of (\d+) Specs[^\n]*\n[^\n]*?(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped`).FindStringSubmatch(string(out))
	if summary != nil {
		l.metrics["day2_e2e_kubeadm_specs"] = summary[0]
	}
	t.Logf("e2e_kubeadm (skipped: %v) in %s: %v", skip, time.Since(t0).Round(time.Second), summary)
	if err != nil || summary == nil || summary[4] != "0" {
		t.Fatalf("kubeadm's e2e suite: %v\n%s", err, lastLines(string(out), 80))
	}
}

// throughLB runs step while a client reads and writes through the load
// balancer every 200 ms, and reports (never asserts) how many failed.
func (l *lab) throughLB(t *testing.T, step string, read func() error, write func(string) error, do func()) {
	t.Helper()
	stop := l.writeProbe(func(i int) error {
		if err := read(); err != nil {
			return err
		}
		return write(fmt.Sprintf("haadm-e2e-day2-%s-%d-%d", strings.ReplaceAll(step, "_", "-"), time.Now().Unix(), i))
	})
	t0 := time.Now()
	defer func() {
		total, failed, first := stop()
		l.metrics["day2_"+step+"_seconds"] = time.Since(t0).Seconds()
		l.metrics["day2_"+step+"_lb_requests"] = total
		l.metrics["day2_"+step+"_lb_requests_failed"] = failed
		msg := ""
		if first != "" {
			msg = " (first: " + first + ")"
		}
		t.Logf("%s: %s; reads+writes through the load balancer: %d of %d failed%s", step, time.Since(t0).Round(time.Second), failed, total, msg)
	}()
	do()
}

// sshTimed is ssh, timed, with the command's output in the log.
func (l *lab) sshTimed(t *testing.T, node, cmd string) time.Duration {
	t.Helper()
	t0 := time.Now()
	out := l.ssh(t, node, cmd)
	took := time.Since(t0)
	t.Logf("%s: %s (%s):\n%s", node, cmd, took.Round(100*time.Millisecond), lastLines(out, 6))
	return took
}

// controlPlaneNodes are the nodes labelled control-plane, first the first master.
func (l *lab) controlPlaneNodes(t *testing.T) []string {
	t.Helper()
	out, err := l.listControlPlane()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (l *lab) listControlPlane() ([]string, error) {
	cs, err := l.kubeClient("")
	if err != nil {
		return nil, err
	}
	nodes, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: "node-role.kubernetes.io/control-plane"})
	if err != nil {
		return nil, err
	}
	out := []string{first}
	for _, n := range nodes.Items {
		if n.Name != first {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out[1:])
	return out, nil
}

// apiserversReady: every named master's apiserver answers /readyz.
func (l *lab) apiserversReady(masters []string) bool {
	for _, n := range masters {
		out, _ := l.sshCmd(n, "curl -sk --max-time 3 https://"+l.ips[n]+":"+l.apiPort+"/readyz").CombinedOutput()
		if strings.TrimSpace(string(out)) != "ok" {
			return false
		}
	}
	return true
}

// sans are a certificate's DNS and IP SANs, sorted.
func sans(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return out
}

// etcdImageVersion is etcd's version in kubeadm's image list (3.6.8-0 -> v3.6.8).
func etcdImageVersion(t *testing.T, images string) string {
	m := regexp.MustCompile(`/etcd:([0-9.]+)-[0-9]+`).FindStringSubmatch(images)
	if m == nil {
		t.Fatalf("no etcd image in kubeadm's list:\n%s", images)
	}
	return "v" + m[1]
}

// lastField is the last word of s.
func lastField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}
