package phases

import (
	"strings"
	"testing"
	"time"

	"github.com/haadm/haadm/internal/testkit"
	"github.com/haadm/haadm/node"
)

// productionFixture is the lab with shaolin running the manifests kubeadm
// wrote for the production profile (encryption at rest, audit policy and
// log, scheduler config), and those files on shaolin.
func productionFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, setup{})
	for _, m := range staticPods() {
		f.setFile("shaolin", manifestsDir+"/"+m, testkit.Testdata(t, "v1.36-production/shaolin/etc/kubernetes/manifests/"+m))
	}
	sh := f.fakes["shaolin"]
	sh.SetFiles(
		node.File{Path: "/etc/kubernetes/enc/enc.yaml", Data: []byte("kind: EncryptionConfiguration\nresources:\n- providers:\n  - aescbc:\n      keys:\n      - name: key1\n        secret: c2VjcmV0LWtleS1ieXRlcy0xMjM0NTY3ODkwMTI=\n"), Mode: 0o600},
		node.File{Path: "/etc/kubernetes/audit/policy.yaml", Data: []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"), Mode: 0o644},
		node.File{Path: "/etc/kubernetes/scheduler-config.yaml", Data: []byte("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nclientConnection:\n  kubeconfig: /etc/kubernetes/scheduler.conf\n"), Mode: 0o644, UID: 0, GID: 0},
	)
	// The listing on shaolin: both directories exist there.
	sh.Respond("if [ -d ", "D 755 0 0 /etc/kubernetes/enc\nD 700 0 0 /var/log/kubernetes/audit\n", nil)
	for _, n := range []string{"emei", "wudang"} {
		h := f.fakes[n]
		h.SetHandler(func(cmd string) (string, error) {
			// The directory check: which of them exist here.
			var out []string
			for _, d := range []string{"/etc/kubernetes/enc", "/var/log/kubernetes/audit"} {
				if st, ok := h.Stat(d); ok && st.Dir && strings.Contains(cmd, d) {
					out = append(out, d)
				}
			}
			return strings.Join(out, "\n"), nil
		})
	}
	return f
}

func TestHostFilesCopiesWhatTheControlPlaneReads(t *testing.T) {
	t.Parallel()
	f := productionFixture(t)
	ctx := testCtx(t, 10*time.Second)
	done, why, err := check(ctx, HostFiles{}, f.c)
	if err != nil || done {
		t.Fatalf("plan: %v %s %v", done, why, err)
	}
	mustContain(t, why, "emei: 5 host files and directories", "wudang: 5 host files and directories")
	w, err := HostFiles{}.Plan(ctx, f.c)
	if err != nil {
		t.Fatal(err)
	}
	details := strings.Join(w.Steps[0].Details, "\n")
	mustContain(t, details, "/etc/kubernetes/enc/enc.yaml: copy from shaolin, mode 0600, owner 0:0 (kube-apiserver --encryption-provider-config)",
		"/var/log/kubernetes/audit/: directory, mode 0700", "/etc/kubernetes/scheduler-config.yaml: copy from shaolin")
	if strings.Contains(details, "c2VjcmV0") {
		t.Errorf("the plan shows the encryption key:\n%s", details)
	}
	if err := apply(ctx, HostFiles{}, f.c); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"emei", "wudang"} {
		for _, p := range []string{"/etc/kubernetes/enc/enc.yaml", "/etc/kubernetes/audit/policy.yaml", "/etc/kubernetes/scheduler-config.yaml"} {
			want, _ := f.fakes["shaolin"].Stat(p)
			got, ok := f.fakes[n].Stat(p)
			if !ok || string(got.Data) != string(want.Data) || got.Mode != want.Mode {
				t.Errorf("%s:%s = %+v, want shaolin's (mode %o)", n, p, got, want.Mode)
			}
		}
		if d, ok := f.fakes[n].Stat("/var/log/kubernetes/audit"); !ok || !d.Dir || d.Mode != 0o700 {
			t.Errorf("%s: audit log directory %+v", n, d)
		}
	}
	if _, ok := f.fakes["shaolin"].Stat("/var/log/kubernetes/audit/audit.log"); ok {
		t.Error("an output file must not be touched")
	}
	if done, why, err := check(ctx, HostFiles{}, f.c); err != nil || !done {
		t.Errorf("second plan: %v %s %v", done, why, err)
	}
}

// TestHostFilesRefusesBeforeAnyChange: a file a flag names that the first
// master lacks, or something that is not a regular file, stops the plan.
func TestHostFilesRefusesBeforeAnyChange(t *testing.T) {
	t.Parallel()
	f := productionFixture(t)
	f.fakes["shaolin"].RemoveFile("/etc/kubernetes/audit/policy.yaml")
	_, _, err := check(testCtx(t, 10*time.Second), HostFiles{}, f.c)
	if err == nil {
		t.Fatal("plan passed without the audit policy on shaolin")
	}
	mustContain(t, err.Error(), "/etc/kubernetes/audit/policy.yaml is missing, but kube-apiserver --audit-policy-file needs it", "nothing was changed")
	if w := f.writes(); len(w) != 0 {
		t.Errorf("wrote %v", w)
	}
}

// TestHostFilesNothingOnAPlainCluster: kubeadm's own manifests read nothing
// haadm must copy: no round trip at all.
func TestHostFilesNothingOnAPlainCluster(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	before := f.snapshot()
	if done, why, err := check(t.Context(), HostFiles{}, f.c); err != nil || !done {
		t.Fatalf("plan: %v %s %v", done, why, err)
	}
	for n := range f.fakes {
		got, _ := f.since(before, n)
		want := map[string]int{}
		if n == "shaolin" {
			want["ReadFiles"] = 1 // the first master's manifests, read once
		}
		if len(got) != len(want) || got["ReadFiles"] != want["ReadFiles"] {
			t.Errorf("%s: %v, want %v", n, got, want)
		}
	}
}
