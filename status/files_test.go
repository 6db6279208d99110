package status

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haadm/haadm/node"
)

// answerBatch makes a fake node run batchScript the way sh would, from
// its files, so that tests go through the one-session path.
func answerBatch(h *node.Fake) {
	h.SetHandler(func(cmd string) (string, error) {
		rest, ok := strings.CutPrefix(cmd, "for f in ")
		if !ok {
			return "", errors.New("unexpected command " + cmd)
		}
		list, _, _ := strings.Cut(rest, ";")
		var b strings.Builder
		for _, p := range strings.Fields(list) {
			data, _, ok := h.File(p)
			if !ok {
				b.WriteString(batchMarker + p + " -1\n")
				continue
			}
			b.WriteString(batchMarker + p + " " + strconv.Itoa(len(data)) + "\n")
			b.Write(data)
		}
		return b.String(), nil
	})
}

// TestBatchScriptInShell runs the real script with sh over real files:
// content is byte-exact (no trailing newline, a file that looks like a
// header), and a missing file is told apart from an empty one.
func TestBatchScriptInShell(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	files := map[string]string{
		"a.conf":     "apiVersion: v1\nserver: https://10.250.0.11:6443\n",
		"no-newline": "last line",
		"empty":      "",
		"tricky":     batchMarker + "/etc/passwd 3\nabc\n",
	}
	var paths []string
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	missing := filepath.Join(dir, "missing")
	paths = append(paths, missing)

	out, err := exec.Command("sh", "-c", batchScript(paths)).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := parseBatch(string(out), paths)
	for name, content := range files {
		r, ok := got[filepath.Join(dir, name)]
		if !ok || r.err != nil || string(r.data) != content {
			t.Errorf("%s: %q %v %v, want %q", name, r.data, r.err, ok, content)
		}
	}
	if r := got[missing]; !errors.Is(r.err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", r.err)
	}
}

func TestParseBatchStopsAtGarbage(t *testing.T) {
	paths := []string{"/a", "/b", "/c"}
	out := batchMarker + "/a 2\nhi" + batchMarker + "/b 100\nshort"
	got := parseBatch(out, paths)
	if string(got["/a"].data) != "hi" {
		t.Errorf("/a: %q", got["/a"].data)
	}
	if _, ok := got["/b"]; ok {
		t.Error("a truncated file must be left to ReadFile")
	}
	if got := parseBatch(batchMarker+"/etc/shadow 3\nabc", paths); len(got) != 0 {
		t.Errorf("a path not asked for: %v", got)
	}
}

// TestReadHostFilesFallback: a node that cannot run the script (here a
// fake without a handler) is read one file at a time.
func TestReadHostFilesFallback(t *testing.T) {
	h := node.NewFake("emei")
	h.SetFile(kubernetesDir+kubeletConf, []byte("kubelet"), 0o600)
	in := &Inputs{}
	files := readHostFiles(context.Background(), in, h)
	if string(files[kubernetesDir+kubeletConf].data) != "kubelet" {
		t.Errorf("kubelet.conf: %+v", files[kubernetesDir+kubeletConf])
	}
	if !errors.Is(files[nginxConf].err, fs.ErrNotExist) {
		t.Errorf("nginx.conf: %v", files[nginxConf].err)
	}
	if len(files) != len(statusFiles()) {
		t.Errorf("read %d files, want %d", len(files), len(statusFiles()))
	}

	answerBatch(h)
	reads := 0
	before := len(h.Calls())
	files = readHostFiles(context.Background(), in, h)
	for _, c := range h.Calls()[before:] {
		if c.Kind == node.CallRead {
			reads++
		}
	}
	if reads != 0 || string(files[kubernetesDir+kubeletConf].data) != "kubelet" || !errors.Is(files[nginxConf].err, fs.ErrNotExist) {
		t.Errorf("batch: %d reads, %+v", reads, files)
	}
}

// TestReadHostFilesHangingNode: a node whose sessions hang costs one probe
// timeout, not one per file.
func TestReadHostFilesHangingNode(t *testing.T) {
	h := node.NewFake("wudang")
	h.SetHandler(func(string) (string, error) {
		time.Sleep(time.Second)
		return "", errors.New("too late")
	})
	in := &Inputs{ProbeTimeout: 100 * time.Millisecond}
	start := time.Now()
	files := readHostFiles(context.Background(), in, h)
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("took %v", took)
	}
	if r := files[kubernetesDir+kubeletConf]; r.err == nil || !strings.Contains(r.err.Error(), "no answer within 100ms") {
		t.Errorf("kubelet.conf: %v", r.err)
	}
}
