package manifests

import (
	"bytes"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// toIPv6 turns a captured IPv4 manifest into what kubeadm writes for an
// IPv6 node fd00::11: bracketed hosts in URLs and endpoints, ::1 loopback.
// It edits the typed pod so that YAML quoting stays right.
func toIPv6(t *testing.T, src []byte) []byte {
	r := strings.NewReplacer(
		"//10.250.0.11:", "//[fd00::11]:",
		"10.250.0.11:", "[fd00::11]:",
		"10.250.0.11", "fd00::11",
		"//127.0.0.1:", "//[::1]:",
		"127.0.0.1", "::1",
	)
	return mutate(t, src, func(p *podT) {
		for k, v := range p.Annotations {
			p.Annotations[k] = r.Replace(v)
		}
		c := &p.Spec.Containers[0]
		for i, arg := range c.Command {
			c.Command[i] = r.Replace(arg)
		}
		for _, pr := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if pr != nil && pr.HTTPGet != nil {
				pr.HTTPGet.Host = r.Replace(pr.HTTPGet.Host)
			}
		}
	})
}

func TestIPv6(t *testing.T) {
	node := Node{Name: "emei", IP: "fd00::12"}
	api, err := APIServer(toIPv6(t, readSource(t, "kube-apiserver.yaml")), node)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := Decode(api)
	if err != nil {
		t.Fatal(err)
	}
	if got := pod.Annotations[apiServerEndpointAnnotation]; got != "[fd00::12]:6443" {
		t.Errorf("endpoint annotation %q", got)
	}
	if v, _ := Flag(pod, "etcd-servers"); v != "https://[::1]:2379" {
		t.Errorf("--etcd-servers=%s", v)
	}
	if h := pod.Spec.Containers[0].ReadinessProbe.HTTPGet.Host; h != "fd00::12" {
		t.Errorf("readiness probe host %s", h)
	}

	members := []Member{{"shaolin", "https://[fd00::11]:2380"}, {"emei", "https://[fd00:0::12]:2380"}}
	etcd, err := Etcd(toIPv6(t, readSource(t, "etcd.yaml")), node, members)
	if err != nil {
		t.Fatal(err)
	}
	pod, err = Decode(etcd)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"advertise-client-urls":       "https://[fd00::12]:2379",
		"listen-client-urls":          "https://[::1]:2379,https://[fd00::12]:2379",
		"listen-peer-urls":            "https://[fd00::12]:2380",
		"initial-advertise-peer-urls": "https://[fd00::12]:2380",
		"initial-cluster":             "emei=https://[fd00:0::12]:2380,shaolin=https://[fd00::11]:2380",
	} {
		if v, _ := Flag(pod, name); v != want {
			t.Errorf("--%s=%s, want %s", name, v, want)
		}
	}
	again, err := Etcd(etcd, node, members)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, etcd) {
		t.Errorf("not idempotent:\n%s", Diff(etcd, again))
	}
}
