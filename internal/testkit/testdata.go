package testkit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The lab the captures come from: kubeadm v1.36.3, `kubeadm init` on
// shaolin without controlPlaneEndpoint, emei and wudang joined as workers.
const (
	// Lab is the capture's directory under testdata/.
	Lab        = "v1.36"
	LabVersion = "v1.36.3"
	// KubeadmPKI holds what `kubeadm init phase certs all` wrote on a
	// tmpfs: every certificate, and ca.key (see its README.md).
	KubeadmPKI = Lab + "/kubeadm-pki"

	ShaolinIP = "10.250.0.11"
	EmeiIP    = "10.250.0.12"
	WudangIP  = "10.250.0.13"
)

// LabIPs maps each lab node to its InternalIP. It is a function so that a
// test may change its copy.
func LabIPs() map[string]string {
	return map[string]string{"shaolin": ShaolinIP, "emei": EmeiIP, "wudang": WudangIP}
}

// RepoRoot is the directory of haadm's go.mod, found by walking up from
// the working directory: go test runs in the package's directory, which
// may be at any depth.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testkit: no go.mod above the working directory")
		}
		dir = parent
	}
}

// TestdataPath is the path of testdata/rel (slash-separated) in the
// repository.
func TestdataPath(rel string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "testdata", filepath.FromSlash(rel)), nil
}

// ReadTestdata reads testdata/rel.
func ReadTestdata(rel string) ([]byte, error) {
	p, err := TestdataPath(rel)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// Testdata reads testdata/rel, failing the test if it cannot.
func Testdata(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := ReadTestdata(rel)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// DecodeYAML decodes testdata/rel (an object as `kubectl get -o yaml`
// prints it) into into, through JSON as client-go's types expect.
func DecodeYAML(t testing.TB, rel string, into any) {
	t.Helper()
	if err := yaml.Unmarshal(Testdata(t, rel), into); err != nil {
		t.Fatalf("testdata/%s: %v", rel, err)
	}
}

// LabNodes are the lab's Node objects as the API served them, in the
// capture's order (by name).
func LabNodes(t testing.TB) []corev1.Node {
	t.Helper()
	var list corev1.NodeList
	DecodeYAML(t, Lab+"/nodes.yaml", &list)
	return list.Items
}

// LabConfigMap is a captured ConfigMap: kubeadm-config, kube-proxy,
// cluster-info or kubelet-config.
func LabConfigMap(t testing.TB, name string) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{}
	DecodeYAML(t, Lab+"/configmaps/"+name+".yaml", cm)
	return cm
}

// LabFiles are the files captured from one lab node, by their absolute
// path on the node ("/etc/kubernetes/kubelet.conf"). The capture holds no
// private key but kubeadm-pki's ca.key.
func LabFiles(name string) (map[string][]byte, error) {
	root, err := TestdataPath(Lab + "/" + name)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files["/"+filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("testkit: lab node %s: %w", name, err)
	}
	return files, nil
}
