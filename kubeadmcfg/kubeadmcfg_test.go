package kubeadmcfg

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// capturedV1beta4 is the ClusterConfiguration the lab's kubeadm v1.36.3 stored.
func capturedV1beta4(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("../testdata/v1.36/configmaps/kubeadm-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	return []byte(cm.Data[ConfigMapKey])
}

func asMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Every field but the two haadm owns must come back exactly as stored, in
// the version it was stored in: the next `kubeadm upgrade` reads it.
func TestSetEndpointKeepsEverythingElse(t *testing.T) {
	v1beta3, err := os.ReadFile("../testdata/kubeadmcfg/v1beta3.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, version string
		in            []byte
		wantSANs      []any
	}{
		{"v1beta4 from kubeadm v1.36.3", "kubeadm.k8s.io/v1beta4", capturedV1beta4(t), []any{"k8s-api.lab", "10.250.0.12"}},
		{"v1beta3 with extras", "kubeadm.k8s.io/v1beta3", v1beta3, []any{"api.example.internal", "k8s-api.lab", "10.250.0.12"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Facts().APIVersion; got != tc.version {
				t.Fatalf("version %s, want %s", got, tc.version)
			}
			if !cfg.SetEndpoint("k8s-api.lab:8443", []string{"k8s-api.lab", "10.250.0.12", "k8s-api.lab"}) {
				t.Fatal("SetEndpoint reported no change")
			}
			if cfg.SetEndpoint("k8s-api.lab:8443", []string{"10.250.0.12"}) {
				t.Error("second SetEndpoint reported a change")
			}
			out, err := cfg.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			before, after := asMap(t, tc.in), asMap(t, out)
			if after["apiVersion"] != tc.version {
				t.Errorf("written as %v", after["apiVersion"])
			}
			if after["controlPlaneEndpoint"] != "k8s-api.lab:8443" {
				t.Errorf("controlPlaneEndpoint %v", after["controlPlaneEndpoint"])
			}
			api := after["apiServer"].(map[string]any)
			if !reflect.DeepEqual(api["certSANs"], tc.wantSANs) {
				t.Errorf("certSANs %v, want %v", api["certSANs"], tc.wantSANs)
			}
			delete(after, "controlPlaneEndpoint")
			delete(api, "certSANs")
			if b, ok := before["apiServer"].(map[string]any); ok {
				delete(b, "certSANs")
			}
			if !reflect.DeepEqual(before, after) {
				bb, _ := yaml.Marshal(before)
				ab, _ := yaml.Marshal(after)
				t.Errorf("fields changed:\n--- before\n%s\n--- after\n%s", bb, ab)
			}
		})
	}
}

func TestFactsDefaults(t *testing.T) {
	cfg, err := Parse(capturedV1beta4(t))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Facts()
	if f.KubernetesVersion != "v1.36.3" || f.ClusterName != "kubernetes" || f.ServiceSubnet != "10.96.0.0/12" ||
		f.DNSDomain != "cluster.local" || f.ControlPlaneEndpoint != "" || f.ExternalEtcd {
		t.Errorf("facts %+v", f)
	}
	bare, err := Parse([]byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f := bare.Facts(); f.ServiceSubnet != "10.96.0.0/12" || f.DNSDomain != "cluster.local" || f.ClusterName != "kubernetes" {
		t.Errorf("defaults %+v", f)
	}
}

func TestParseRefusesOtherKinds(t *testing.T) {
	for _, in := range []string{
		"apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n",
		"apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\n",
		"not: [yaml",
		"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nfutureField: 1\n",
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		} else if !strings.Contains(err.Error(), "ClusterConfiguration") && !strings.Contains(err.Error(), "decode") && !strings.Contains(err.Error(), "futureField") {
			t.Errorf("Parse(%q): unhelpful error %v", in, err)
		}
	}
}

// TestFactsProduction reads the kubeadm-config kubeadm v1.36.3 stored for
// the lab's production profile, and the etcd SANs of a v1beta4 config.
func TestFactsProduction(t *testing.T) {
	b, err := os.ReadFile("../testdata/v1.36-production/configmaps/kubeadm-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(cm.Data[ConfigMapKey]))
	if err != nil {
		t.Fatal(err)
	}
	if f := cfg.Facts(); f.CertificateValidity != 8760*time.Hour {
		t.Errorf("certificateValidityPeriod: %v", f.CertificateValidity)
	}
	withSANs := strings.Replace(cm.Data[ConfigMapKey], "    dataDir: /var/lib/etcd\n", "    dataDir: /var/lib/etcd\n    serverCertSANs: [etcd.example]\n    peerCertSANs: [peer.example]\n", 1)
	cfg, err = Parse([]byte(withSANs))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Facts()
	if len(f.EtcdServerCertSANs) != 1 || f.EtcdServerCertSANs[0] != "etcd.example" || len(f.EtcdPeerCertSANs) != 1 || f.EtcdPeerCertSANs[0] != "peer.example" {
		t.Errorf("etcd SANs: %v %v", f.EtcdServerCertSANs, f.EtcdPeerCertSANs)
	}
}
