package backup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func stamp(i int) string {
	return time.Date(2025, 3, 1, 12, 0, i, 0, time.UTC).Format(StampLayout)
}

func dirs(originals ...int) []Dir {
	var out []Dir
	for i := range 8 {
		out = append(out, Dir{Stamp: stamp(i), Manifest: &Manifest{Original: slices.Contains(originals, i)}})
	}
	return out
}

func stamps(ds []Dir) []string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Stamp)
	}
	return s
}

func TestPrune(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		originals []int
		keep      int
		gone      []int
	}{
		{"newest five kept", nil, 5, []int{0, 1, 2}},
		{"originals kept too", []int{0, 3}, 5, []int{1, 2}},
		{"keep more than there are", []int{0}, 20, nil},
		{"keep one", []int{2}, 1, []int{0, 1, 3, 4, 5, 6}},
		{"keep zero keeps the originals only", []int{7}, 0, []int{0, 1, 2, 3, 4, 5, 6}},
		{"of many originals the oldest and the newest stay", []int{0, 1, 2, 3}, 2, []int{1, 2, 4, 5}},
	} {
		var want []string
		for _, i := range tt.gone {
			want = append(want, stamp(i))
		}
		if got := stamps(Prune(dirs(tt.originals...), tt.keep)); !slices.Equal(got, want) {
			t.Errorf("%s: pruned %v, want %v", tt.name, got, want)
		}
	}
}

func TestIsOriginal(t *testing.T) {
	t.Parallel()
	one := &Manifest{ControlPlanes: []string{"shaolin"}, Etcd: Etcd{ClusterID: "c1", Members: []Member{{Name: "shaolin"}}}}
	three := &Manifest{ControlPlanes: []string{"emei", "shaolin", "wudang"}, Etcd: Etcd{ClusterID: "c1", Members: make([]Member, 3)}}
	earlier := []Dir{{Manifest: one}}
	switch {
	case !IsOriginal(one, earlier):
		t.Error("the untouched cluster is not original")
	case IsOriginal(three, earlier):
		t.Error("a re-run on the grown cluster is original")
	case !IsOriginal(three, nil):
		t.Error("the first backup of a cluster is not original")
	case !IsOriginal(&Manifest{Etcd: Etcd{ClusterID: "c2", Members: make([]Member, 3)}}, earlier):
		t.Error("the first backup of another etcd cluster (restored or rebuilt) is not original")
	}
}

// List sees only what haadm wrote: stamp-named directories with a
// manifest of its format; everything else is the operator's.
func TestList(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if ds, err := List(filepath.Join(root, "missing")); err != nil || len(ds) != 0 {
		t.Fatalf("missing root: %v %v", ds, err)
	}
	mk := func(name string, m *Manifest) {
		d := filepath.Join(root, name)
		os.Mkdir(d, DirMode)
		if m != nil {
			if err := Save(d, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(stamp(2), &Manifest{Format: Format, Command: "promote"})
	mk(stamp(1), &Manifest{Format: Format, Command: "phase-certs"})
	mk(stamp(3), nil)
	mk(stamp(4), &Manifest{Format: "other"})
	mk("notes", &Manifest{Format: Format})
	os.WriteFile(filepath.Join(root, stamp(5)), []byte("a file"), 0o600)
	ds, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := stamps(ds); !slices.Equal(got, []string{stamp(1), stamp(2)}) || ds[0].Manifest.Command != "phase-certs" {
		t.Errorf("List = %v", got)
	}
	if fi, _ := os.Stat(filepath.Join(root, stamp(1), ManifestFile)); fi.Mode().Perm() != FileMode {
		t.Errorf("manifest mode %v", fi.Mode())
	}
}

// The recorder writes the manifest after every change: a run that crashes
// leaves a manifest that says how far it got.
func TestRecorder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := &Manifest{Format: Format}
	r := NewRecorder(dir, m)
	r.Applied("certs", "emei", "17 files")
	got, err := Load(dir)
	if err != nil || len(got.Changes) != 1 || got.Changes[0].What != "17 files" || got.Result != nil {
		t.Fatalf("after one change: %+v %v", got, err)
	}
	r.Finish(os.ErrPermission)
	got, _ = Load(dir)
	if got.Result == nil || got.Result.Status != Failed || got.Result.Error != "permission denied" || r.Err() != nil {
		t.Errorf("result %+v, err %v", got.Result, r.Err())
	}
}
