package status

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

// TestReadHostFiles: every file in one round trip; a missing file is told
// apart from an empty one.
func TestReadHostFiles(t *testing.T) {
	t.Parallel()
	f := node.NewFake("emei")
	kubelet := kubeconfigPath(controlplane.KubeletConf)
	admin := kubeconfigPath(controlplane.AdminConf)
	f.SetFile(kubelet, []byte("kubelet"), 0o600)
	f.SetFile(admin, nil, 0o600)
	h := node.NewCounting(f)
	files := readHostFiles(context.Background(), &Inputs{}, h)
	if string(files[kubelet].data) != "kubelet" || files[kubelet].err != nil {
		t.Errorf("kubelet.conf: %+v", files[kubelet])
	}
	if files[admin].err != nil || len(files[admin].data) != 0 {
		t.Errorf("empty admin.conf: %+v", files[admin])
	}
	if !errors.Is(files[lb.EngineNginx.ConfPath()].err, fs.ErrNotExist) {
		t.Errorf("nginx.conf: %v", files[lb.EngineNginx.ConfPath()].err)
	}
	if len(files) != len(statusFiles()) {
		t.Errorf("read %d files, want %d", len(files), len(statusFiles()))
	}
	if n := h.RoundTrips(); n != 1 {
		t.Errorf("%d round trips, want 1", n)
	}
}

// hangingHost answers no read in time, like a node whose SSH channel is stuck.
type hangingHost struct{ *node.Fake }

func (h hangingHost) ReadFiles(context.Context, []string) (map[string]node.File, error) {
	time.Sleep(time.Second)
	return nil, errors.New("too late")
}

// TestReadHostFilesHangingNode: a node that hangs costs one probe timeout,
// not one per file, even when it ignores its context.
func TestReadHostFilesHangingNode(t *testing.T) {
	t.Parallel()
	in := &Inputs{ProbeTimeout: 100 * time.Millisecond}
	start := time.Now()
	files := readHostFiles(context.Background(), in, hangingHost{node.NewFake("wudang")})
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("took %v", took)
	}
	if r := files[kubeconfigPath(controlplane.KubeletConf)]; r.err == nil || !strings.Contains(r.err.Error(), "no answer within 100ms") {
		t.Errorf("kubelet.conf: %v", r.err)
	}
}
