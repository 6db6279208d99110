package manifests

import (
	"os"
	"path/filepath"
	"testing"
)

// sourceDir holds the manifests captured from the first master ("shaolin",
// 10.250.0.11) of a real kubeadm v1.36.3 cluster. The tests read these and
// never a hand-written imitation: the point is to transform exactly what
// kubeadm writes.
const sourceDir = "../testdata/v1.36/shaolin/etc/kubernetes/manifests"

var (
	shaolin = Node{Name: "shaolin", IP: "10.250.0.11"}
	emei    = Node{Name: "emei", IP: "10.250.0.12"}
	wudang  = Node{Name: "wudang", IP: "10.250.0.13"}
)

func peer(n Node) Member { return Member{Name: n.Name, PeerURL: "https://" + n.IP + ":2380"} }

// membersFor is the etcd member list when n joins: the members before it,
// in etcd's (ID, so arbitrary) order, and n itself.
func membersFor(n Node) []Member {
	switch n.Name {
	case "emei":
		return []Member{peer(emei), peer(shaolin)}
	case "wudang":
		return []Member{peer(emei), peer(wudang), peer(shaolin)}
	}
	panic("no member list for " + n.Name)
}

func readSource(t *testing.T, file string) []byte {
	t.Helper()
	path := filepath.Join(sourceDir, file)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("real kubeadm v1.36.3 manifest missing: %v (captured from the lab's first master into %s)", err, sourceDir)
	}
	return b
}

// transform applies the transform for one manifest file to a node.
func transform(file string, src []byte, n Node) ([]byte, error) {
	switch file {
	case "kube-apiserver.yaml":
		return APIServer(src, n)
	case "etcd.yaml":
		return Etcd(src, n, membersFor(n))
	case "kube-controller-manager.yaml":
		return ControllerManager(src)
	case "kube-scheduler.yaml":
		return Scheduler(src)
	}
	panic("unknown manifest " + file)
}

var files = []string{"etcd.yaml", "kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"}
