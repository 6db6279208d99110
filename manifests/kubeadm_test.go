package manifests

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

const kubeadmRefDir = "../testdata/golden/manifests/kubeadm-v1.36.3"

func readRef(t *testing.T, node, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(kubeadmRefDir, node, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMatchesKubeadm compares the transforms with kubeadm's own rendering of
// each node's manifests (see the README beside the reference files).
func TestMatchesKubeadm(t *testing.T) {
	for _, n := range []Node{emei, wudang} {
		for _, f := range files {
			t.Run(n.Name+"/"+f, func(t *testing.T) {
				src := readRef(t, "shaolin", f)
				want := readRef(t, n.Name, f)
				var got []byte
				var err error
				if f == "etcd.yaml" {
					// kubeadm's init renders a one-member cluster; make the
					// joining member's flags say the same.
					got, err = Etcd(src, n, []Member{peer(n)})
					if err == nil {
						want = mutate(t, want, func(p *podT) { SetFlag(p, "initial-cluster-state", "existing") })
					}
				} else {
					got, err = transform(f, src, n)
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("differs from kubeadm's rendering for %s:\n%s", n.Name, Diff(want, got))
				}
			})
		}
	}
}
