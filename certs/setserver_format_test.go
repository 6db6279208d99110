package certs

import (
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The kube-proxy and cluster-info ConfigMaps are written by kubeadm with its
// own layout; repointing them must change the server line and nothing else.
func TestSetServerKeepsLayout(t *testing.T) {
	raw, err := os.ReadFile("../testdata/v1.36/configmaps/kube-proxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	in := cm.Data["kubeconfig.conf"]
	out, changed, err := SetServer([]byte(in), "https://10.250.0.12:8443")
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	inLines, outLines := strings.Split(in, "\n"), strings.Split(string(out), "\n")
	if len(inLines) != len(outLines) {
		t.Fatalf("line count %d -> %d:\n%s", len(inLines), len(outLines), out)
	}
	diffs := 0
	for i := range inLines {
		if inLines[i] != outLines[i] {
			diffs++
			if strings.TrimSpace(outLines[i]) != "server: https://10.250.0.12:8443" {
				t.Errorf("line %d changed: %q -> %q", i, inLines[i], outLines[i])
			}
		}
	}
	if diffs != 1 {
		t.Errorf("%d lines changed, want 1", diffs)
	}
	if got, _ := Server(out); got != "https://10.250.0.12:8443" {
		t.Errorf("server %q", got)
	}
}
