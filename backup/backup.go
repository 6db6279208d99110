// Package backup is the format of haadm's backups: one directory per run,
// named by its UTC start time, holding manifest.json (what was backed up,
// and what the run then changed), the etcd snapshot and the first master's
// etcd manifest. Listing, choosing the original and pruning are functions
// of the directory's contents only, so they are tested without a cluster.
package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

const (
	// Format marks a manifest haadm wrote; pruning touches nothing else.
	Format = "haadm-backup/v1"
	// ManifestFile, SnapshotFile and EtcdManifestFile are the files of a
	// local backup directory.
	ManifestFile     = "manifest.json"
	SnapshotFile     = "etcd-snapshot.db"
	EtcdManifestFile = "etcd.yaml"
	// NodeRoot holds a node's copies, one directory per backup stamp.
	NodeRoot = "/var/backups/haadm"
	// ArchiveFile is the node's archive of its configuration.
	ArchiveFile = "etc.tgz"
	// StampLayout names a backup directory: its UTC start time.
	StampLayout = "20060102T150405Z"
	// DirMode and FileMode: backups hold the cluster's CA keys.
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// Result statuses of a run.
const (
	Finished = "finished"
	Failed   = "failed"
)

// Manifest is manifest.json.
type Manifest struct {
	Format string `json:"format"`
	// Command is the haadm command that took the backup: "promote",
	// "phase-certs", ...
	Command string    `json:"command"`
	Started time.Time `json:"started"`
	Options Options   `json:"options"`
	// FirstMaster is the master the snapshot was taken from.
	FirstMaster string `json:"firstMaster"`
	// ControlPlanes were the cluster's control-plane nodes at backup time.
	ControlPlanes []string `json:"controlPlanes"`
	APIServerPort int      `json:"apiServerPort"`
	Etcd          Etcd     `json:"etcd"`
	Snapshot      Snapshot `json:"snapshot"`
	// Archives are the node archives, by node name.
	Archives map[string]Archive `json:"archives"`
	// Original marks the backup of a promotion's first run: the cluster as
	// it was before haadm touched it. Pruning keeps it.
	Original bool `json:"original"`
	// Changes are appended as the run applies steps; Result when it ends.
	Changes []Change `json:"changes"`
	Result  *Result  `json:"result,omitempty"`
}

// Options are the options of the run that matter for reading the backup.
type Options struct {
	Nodes    []string `json:"nodes,omitempty"`
	LBMode   string   `json:"lbMode,omitempty"`
	LBNode   string   `json:"lbNode,omitempty"`
	Endpoint string   `json:"endpoint,omitempty"`
}

// Etcd is the etcd cluster at backup time.
type Etcd struct {
	ClusterID string   `json:"clusterID"`
	Members   []Member `json:"members"`
}

// Member is one etcd member; IDs in hex, as etcdctl prints them.
type Member struct {
	Name     string   `json:"name"`
	ID       string   `json:"id"`
	PeerURLs []string `json:"peerURLs"`
	Learner  bool     `json:"learner,omitempty"`
}

// Snapshot describes SnapshotFile.
type Snapshot struct {
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	Revision int64  `json:"revision,omitempty"` // 0: unknown
	Version  string `json:"version,omitempty"`
}

// Archive is a node's etc.tgz: where it is on the node and which paths
// (relative to /) it holds.
type Archive struct {
	Path  string   `json:"path"`
	Paths []string `json:"paths"`
}

// Change is one applied step.
type Change struct {
	Phase string    `json:"phase"`
	Node  string    `json:"node,omitempty"`
	What  string    `json:"what"`
	Time  time.Time `json:"time"`
}

// Result is how the run ended.
type Result struct {
	Status string    `json:"status"`
	Error  string    `json:"error,omitempty"`
	Time   time.Time `json:"time"`
}

// NodeDir is where a node keeps its copies of the backup stamp.
func NodeDir(stamp string) string { return NodeRoot + "/" + stamp }

// Save writes m to dir/manifest.json through a synced temporary file and a
// rename, so a crash never leaves half a manifest (which would make the
// backup invisible to List).
func Save(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, ManifestFile), append(b, '\n'))
}

// WriteFile writes data to path with FileMode, atomically.
func WriteFile(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(FileMode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Load reads dir/manifest.json and refuses one haadm did not write.
func Load(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%s: format %q, want %q: not a haadm backup", filepath.Join(dir, ManifestFile), m.Format, Format)
	}
	return &m, nil
}

// Dir is one backup directory haadm wrote.
type Dir struct {
	Path     string
	Stamp    string
	Manifest *Manifest
}

// List returns the backups under root, oldest first. Only directories
// named by a stamp and holding a manifest haadm wrote count: whatever else
// the operator keeps there is not a backup, and is never pruned. A missing
// root is no backups.
func List(root string) ([]Dir, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Dir
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := time.Parse(StampLayout, e.Name()); err != nil {
			continue
		}
		p := filepath.Join(root, e.Name())
		m, err := Load(p)
		if err != nil {
			continue
		}
		out = append(out, Dir{Path: p, Stamp: e.Name(), Manifest: m})
	}
	// Stamps sort as times.
	slices.SortFunc(out, func(a, b Dir) int { return compare(a.Stamp, b.Stamp) })
	return out, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// IsOriginal decides whether a backup of the cluster m describes is the
// original: the cluster is as kubeadm made it (one etcd member, one
// control plane), or no earlier backup is of the same etcd cluster (the
// first backup haadm took of it, whatever it looked like).
func IsOriginal(m *Manifest, earlier []Dir) bool {
	if len(m.Etcd.Members) == 1 && len(m.ControlPlanes) == 1 {
		return true
	}
	for _, d := range earlier {
		if d.Manifest.Etcd.ClusterID == m.Etcd.ClusterID {
			return false
		}
	}
	return true
}

// Prune returns the backups to remove from dirs (oldest first, as List
// returns them) to keep the newest keep, plus, of each etcd cluster's
// originals, the oldest (the cluster before haadm ever touched it) and the
// newest (before its latest promotion). The originals in between go: every
// phase run on a single master is one, and they must not pile up on the
// first master's disk, which etcd shares.
func Prune(dirs []Dir, keep int) []Dir {
	keep = max(keep, 0)
	oldest, newest := map[string]int{}, map[string]int{}
	for i, d := range dirs {
		if !d.Manifest.Original {
			continue
		}
		id := d.Manifest.Etcd.ClusterID
		if _, ok := oldest[id]; !ok {
			oldest[id] = i
		}
		newest[id] = i
	}
	var out []Dir
	for i, d := range dirs {
		id := d.Manifest.Etcd.ClusterID
		kept := i >= len(dirs)-keep || d.Manifest.Original && (oldest[id] == i || newest[id] == i)
		if !kept {
			out = append(out, d)
		}
	}
	return out
}

// Recorder appends what a run changes to its backup's manifest, writing it
// after each change, so the manifest of a run that crashed still says how
// far it got.
type Recorder struct {
	mu  sync.Mutex
	dir string
	m   *Manifest
	err error
	now func() time.Time
}

// NewRecorder records into dir's manifest m (already saved there).
func NewRecorder(dir string, m *Manifest) *Recorder {
	return &Recorder{dir: dir, m: m, now: time.Now}
}

// Applied records one applied step.
func (r *Recorder) Applied(phase, nodeName, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m.Changes = append(r.m.Changes, Change{Phase: phase, Node: nodeName, What: what, Time: r.now().UTC()})
	r.save()
}

// Finish records the end of the run: finished, or failed with err.
func (r *Recorder) Finish(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &Result{Status: Finished, Time: r.now().UTC()}
	if err != nil {
		res.Status, res.Error = Failed, err.Error()
	}
	r.m.Result = res
	r.save()
}

// save keeps the first error: the run goes on (recording is no reason to
// stop a promotion half way) and the caller reports it with Err.
func (r *Recorder) save() {
	if err := Save(r.dir, r.m); err != nil && r.err == nil {
		r.err = err
	}
}

// Err is the first failure to write the manifest, if any.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Dir is the backup directory the recorder writes to.
func (r *Recorder) Dir() string { return r.dir }
