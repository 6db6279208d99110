package manifests

import (
	"bytes"
	"strings"
	"testing"
)

// TestRoundTrip is what makes typed transforms safe: kubeadm's own files
// come back byte for byte from Decode+Encode, so nothing is lost or
// reformatted.
func TestRoundTrip(t *testing.T) {
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			src := readSource(t, f)
			pod, err := Decode(src)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Encode(pod)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, src) {
				t.Errorf("round trip changed the manifest:\n%s", Diff(src, out))
			}
		})
	}
}

func TestGolden(t *testing.T) {
	for _, n := range []Node{emei, wudang} {
		for _, f := range files {
			t.Run(n.Name+"/"+f, func(t *testing.T) {
				src := readSource(t, f)
				out, err := transform(f, src, n)
				if err != nil {
					t.Fatal(err)
				}
				checkGolden(t, n.Name+"/"+f, out)
				d := Diff(src, out)
				switch f {
				case "kube-controller-manager.yaml", "kube-scheduler.yaml":
					if !bytes.Equal(out, src) {
						t.Errorf("%s should be copied unchanged:\n%s", f, d)
					}
				default:
					checkGolden(t, n.Name+"/"+f+".diff", []byte(d))
				}
			})
		}
	}
}

// TestIdempotent: re-running haadm on a node whose manifests it already
// wrote must not change them (a change would restart the static pod), and
// the result must not depend on which master the source came from.
func TestIdempotent(t *testing.T) {
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			src := readSource(t, f)
			emeiOut, err := transform(f, src, emei)
			if err != nil {
				t.Fatal(err)
			}
			again, err := transform(f, emeiOut, emei)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, emeiOut) {
				t.Errorf("second run for emei changed the manifest:\n%s", Diff(emeiOut, again))
			}
			fromShaolin, err := transform(f, src, wudang)
			if err != nil {
				t.Fatal(err)
			}
			fromEmei, err := transform(f, emeiOut, wudang)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fromShaolin, fromEmei) {
				t.Errorf("wudang's manifest depends on the source master:\n%s", Diff(fromShaolin, fromEmei))
			}
		})
	}
}

// commandChanges returns the flags whose entries differ between two pods,
// checking that unchanged flags kept their position.
func commandChanges(t *testing.T, before, after []byte) map[string]string {
	t.Helper()
	a, err := Decode(before)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(after)
	if err != nil {
		t.Fatal(err)
	}
	old, cur := a.Spec.Containers[0].Command, b.Spec.Containers[0].Command
	if len(cur) < len(old) {
		t.Fatalf("command shrank from %d to %d entries", len(old), len(cur))
	}
	changed := map[string]string{}
	for i, arg := range cur {
		if i < len(old) && old[i] == arg {
			continue
		}
		name, value, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if i < len(old) {
			oldName, _, _ := strings.Cut(strings.TrimPrefix(old[i], "--"), "=")
			if oldName != name {
				t.Errorf("entry %d: flag %q replaced by %q: flags must keep their order", i, old[i], arg)
			}
		}
		changed[name] = value
	}
	return changed
}

func TestAPIServerSemantics(t *testing.T) {
	src := readSource(t, "kube-apiserver.yaml")
	srcPod, err := Decode(src)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := Flag(srcPod, "advertise-address"); v != shaolin.IP {
		t.Fatalf("source advertise-address %q: the captured manifests are not shaolin's", v)
	}
	out, err := APIServer(src, emei)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	changes := commandChanges(t, src, out)
	for name, value := range changes {
		switch name {
		case "advertise-address":
			if value != emei.IP {
				t.Errorf("--advertise-address=%s", value)
			}
		case "etcd-servers":
			if value != "https://127.0.0.1:2379" {
				t.Errorf("--etcd-servers=%s", value)
			}
		default:
			t.Errorf("unexpected change --%s=%s", name, value)
		}
	}
	if v, _ := Flag(pod, "etcd-servers"); v != "https://127.0.0.1:2379" {
		t.Errorf("--etcd-servers=%s, want the local member", v)
	}
	if got := pod.Annotations[apiServerEndpointAnnotation]; got != "10.250.0.12:6443" {
		t.Errorf("endpoint annotation %q", got)
	}
	c := pod.Spec.Containers[0]
	for name, p := range map[string]string{"liveness": c.LivenessProbe.HTTPGet.Host, "readiness": c.ReadinessProbe.HTTPGet.Host, "startup": c.StartupProbe.HTTPGet.Host} {
		if p != emei.IP {
			t.Errorf("%s probe host %q, want %s", name, p, emei.IP)
		}
	}
	if strings.Contains(string(out), shaolin.IP) {
		t.Errorf("output still mentions shaolin's IP:\n%s", out)
	}
}

func TestEtcdSemantics(t *testing.T) {
	src := readSource(t, "etcd.yaml")
	out, err := Etcd(src, wudang, membersFor(wudang))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"name":                        "wudang",
		"advertise-client-urls":       "https://10.250.0.13:2379",
		"listen-client-urls":          "https://127.0.0.1:2379,https://10.250.0.13:2379",
		"listen-peer-urls":            "https://10.250.0.13:2380",
		"initial-advertise-peer-urls": "https://10.250.0.13:2380",
		"initial-cluster":             "emei=https://10.250.0.12:2380,shaolin=https://10.250.0.11:2380,wudang=https://10.250.0.13:2380",
		"initial-cluster-state":       "existing",
	}
	changes := commandChanges(t, src, out)
	for name, value := range changes {
		if w, ok := want[name]; !ok || w != value {
			t.Errorf("changed --%s=%s, want %q", name, value, w)
		}
	}
	pod, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		if v, _ := Flag(pod, name); v != w {
			t.Errorf("--%s=%s, want %s", name, v, w)
		}
	}
	if v, _ := Flag(pod, "listen-metrics-urls"); v != "http://127.0.0.1:2381" {
		t.Errorf("--listen-metrics-urls=%s changed", v)
	}
	if got := pod.Annotations[etcdClientURLsAnnotation]; got != "https://10.250.0.13:2379" {
		t.Errorf("annotation %q", got)
	}
	srcPod, _ := Decode(src)
	if a, b := srcPod.Spec.Containers[0].LivenessProbe.HTTPGet.Host, pod.Spec.Containers[0].LivenessProbe.HTTPGet.Host; a != b {
		t.Errorf("probe host changed from %q to %q", a, b)
	}
	if strings.Count(string(out), shaolin.IP) != 1 {
		t.Errorf("shaolin's IP should appear only in --initial-cluster:\n%s", out)
	}
}

// TestKeepsSourcePorts changes the captured manifests to non-default ports
// and checks that the transforms carry them over.
func TestKeepsSourcePorts(t *testing.T) {
	api := mutate(t, readSource(t, "kube-apiserver.yaml"), func(p *podT) {
		SetFlag(p, "secure-port", "7443")
		SetFlag(p, "etcd-servers", "https://127.0.0.1:12379")
	})
	out, err := APIServer(api, emei)
	if err != nil {
		t.Fatal(err)
	}
	pod, _ := Decode(out)
	if got := pod.Annotations[apiServerEndpointAnnotation]; got != "10.250.0.12:7443" {
		t.Errorf("endpoint annotation %q, want port 7443", got)
	}
	if v, _ := Flag(pod, "etcd-servers"); v != "https://127.0.0.1:12379" {
		t.Errorf("--etcd-servers=%s", v)
	}

	etcd := mutate(t, readSource(t, "etcd.yaml"), func(p *podT) {
		SetFlag(p, "advertise-client-urls", "https://10.250.0.11:12379")
		SetFlag(p, "listen-client-urls", "https://127.0.0.1:12379,https://10.250.0.11:12379")
		SetFlag(p, "listen-peer-urls", "https://10.250.0.11:12380")
		SetFlag(p, "initial-advertise-peer-urls", "https://10.250.0.11:12380")
	})
	members := []Member{{"shaolin", "https://10.250.0.11:12380"}, {"emei", "https://10.250.0.12:12380"}}
	out, err = Etcd(etcd, emei, members)
	if err != nil {
		t.Fatal(err)
	}
	pod, _ = Decode(out)
	for name, w := range map[string]string{
		"advertise-client-urls":       "https://10.250.0.12:12379",
		"listen-client-urls":          "https://127.0.0.1:12379,https://10.250.0.12:12379",
		"listen-peer-urls":            "https://10.250.0.12:12380",
		"initial-advertise-peer-urls": "https://10.250.0.12:12380",
		"initial-cluster":             "emei=https://10.250.0.12:12380,shaolin=https://10.250.0.11:12380",
	} {
		if v, _ := Flag(pod, name); v != w {
			t.Errorf("--%s=%s, want %s", name, v, w)
		}
	}
}

// TestEtcdMetricsOnNodeAddress: kubeadm derives the etcd probes from
// --listen-metrics-urls, so a metrics listener customised to the node's
// address must move, probes included, or etcd could not bind it.
func TestEtcdMetricsOnNodeAddress(t *testing.T) {
	src := mutate(t, readSource(t, "etcd.yaml"), func(p *podT) {
		SetFlag(p, "listen-metrics-urls", "http://10.250.0.11:2381")
		p.Spec.Containers[0].LivenessProbe.HTTPGet.Host = shaolin.IP
	})
	out, err := Etcd(src, emei, membersFor(emei))
	if err != nil {
		t.Fatal(err)
	}
	pod, _ := Decode(out)
	if v, _ := Flag(pod, "listen-metrics-urls"); v != "http://10.250.0.12:2381" {
		t.Errorf("--listen-metrics-urls=%s", v)
	}
	if h := pod.Spec.Containers[0].LivenessProbe.HTTPGet.Host; h != emei.IP {
		t.Errorf("liveness probe host %s", h)
	}
}

func TestExternalEtcdUntouched(t *testing.T) {
	const external = "https://etcd-1.example:2379,https://192.0.2.7:2379"
	api := mutate(t, readSource(t, "kube-apiserver.yaml"), func(p *podT) { SetFlag(p, "etcd-servers", external) })
	out, err := APIServer(api, emei)
	if err != nil {
		t.Fatal(err)
	}
	pod, _ := Decode(out)
	if v, _ := Flag(pod, "etcd-servers"); v != external {
		t.Errorf("--etcd-servers=%s, want the external cluster kept", v)
	}
}

func TestNodeSpecificBindAddressRefused(t *testing.T) {
	for _, f := range []string{"kube-controller-manager.yaml", "kube-scheduler.yaml"} {
		src := mutate(t, readSource(t, f), func(p *podT) { SetFlag(p, "bind-address", shaolin.IP) })
		if _, err := transform(f, src, emei); err == nil || !strings.Contains(err.Error(), "--bind-address=10.250.0.11") {
			t.Errorf("%s: err = %v", f, err)
		}
	}
}

func TestErrors(t *testing.T) {
	api := readSource(t, "kube-apiserver.yaml")
	etcd := readSource(t, "etcd.yaml")
	cases := []struct {
		name string
		run  func() error
		want string
	}{
		{"bad IP", func() error { _, err := APIServer(api, Node{Name: "emei", IP: "10.250.0"}); return err }, "not an IP address"},
		{"bad name", func() error { _, err := Etcd(etcd, Node{Name: "Emei,x", IP: emei.IP}, membersFor(emei)); return err }, "node name"},
		{"swapped files", func() error { _, err := APIServer(etcd, emei); return err }, `manifest is for "etcd"`},
		{"scheduler as controller-manager", func() error { _, err := ControllerManager(readSource(t, "kube-scheduler.yaml")); return err }, "not kube-controller-manager"},
		{"not a pod", func() error { _, err := APIServer([]byte("apiVersion: v1\nkind: Service\n"), emei); return err }, "want v1 Pod"},
		{"garbage", func() error { _, err := Scheduler([]byte("{")); return err }, "decode"},
		{"unknown field", func() error {
			_, err := APIServer(bytes.Replace(api, []byte("hostNetwork: true"), []byte("hostNetwork: true\n  futureField: 1"), 1), emei)
			return err
		}, "futureField"},
		{"no members", func() error { _, err := Etcd(etcd, emei, nil); return err }, "initial cluster is empty"},
		{"self missing", func() error { _, err := Etcd(etcd, emei, []Member{peer(shaolin)}); return err }, "does not list emei"},
		{"self wrong URL", func() error {
			_, err := Etcd(etcd, emei, []Member{peer(shaolin), {Name: "emei", PeerURL: "https://10.250.0.99:2380"}})
			return err
		}, "this manifest advertises https://10.250.0.12:2380"},
		{"duplicate member", func() error {
			_, err := Etcd(etcd, emei, []Member{peer(emei), peer(shaolin), peer(shaolin)})
			return err
		}, "listed twice"},
		{"bad peer URL", func() error {
			_, err := Etcd(etcd, emei, []Member{peer(emei), {Name: "shaolin", PeerURL: "10.250.0.11"}})
			return err
		}, "want scheme://host:port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
