package phases

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/haadm/haadm/manifests"
	"github.com/haadm/haadm/node"
)

// HostFiles gives every new master what the first master's control-plane
// static pods read from the host beyond kubeadm's own files: an encryption
// configuration (the same keys everywhere, or Secrets written by one
// apiserver are unreadable by another), an audit policy, an OIDC CA, an
// admission or scheduler configuration, webhook kubeconfigs; and the
// directories they write to (an audit log). They are found in the
// manifests, whether kubeadm-config's extraArgs and extraVolumes put them
// there or an operator's hand, and copied with their mode and owner before
// etcd grows: a new apiserver that could not start would leave etcd with a
// voter and no working master.
type HostFiles struct{}

func (HostFiles) Name() string { return "host-files" }
func (HostFiles) Description() string {
	return "files the control plane reads from the host (encryption, audit, scheduler configs...) to the new masters"
}
func (HostFiles) Uses() Uses { return 0 }

// maxHostFilesBytes bounds what is copied: configuration files are small,
// and anything larger is not what these volumes are for.
const maxHostFilesBytes = 32 << 20

// hostSet is what every new master must have, read once from the first master.
type hostSet struct {
	files     []node.File // content, mode and owner as on the first master
	dirs      []node.File // Dir entries
	ifMissing map[string]bool
	why       map[string]string
}

type hostSetOnce struct {
	once sync.Once
	set  *hostSet
	err  error
}

func (c *Cluster) hostFiles(ctx context.Context) (*hostSet, error) {
	c.hostSet.once.Do(func() { c.hostSet.set, c.hostSet.err = resolveHostFiles(ctx, c) })
	return c.hostSet.set, c.hostSet.err
}

// resolveHostFiles turns the manifests' host paths into files and
// directories, reading the first master in at most three round trips.
// Whatever cannot be copied safely is refused here, before any change.
func resolveHostFiles(ctx context.Context, c *Cluster) (*hostSet, error) {
	src, err := c.sourceFiles(ctx)
	if err != nil {
		return nil, err
	}
	first := c.First.Name
	h := c.Host(first)
	set := &hostSet{ifMissing: map[string]bool{}, why: map[string]string{}}
	var copyFiles, copyDirs, createDirs []string
	required := map[string]bool{}
	podOf := map[string][]byte{}
	for _, f := range staticPods() {
		paths, err := manifests.HostPaths(src.pods[f])
		if err != nil {
			return nil, fmt.Errorf("node %s: %s: %w", first, f, err)
		}
		for _, p := range paths {
			set.why[p.Path] = p.Component + " " + p.Why
			switch p.Kind {
			case manifests.CopyFile:
				copyFiles = append(copyFiles, p.Path)
				podOf[p.Path] = src.pods[f]
				required[p.Path] = required[p.Path] || !p.Optional
				set.ifMissing[p.Path] = p.IfMissing
			case manifests.CopyDir:
				copyDirs = append(copyDirs, p.Path)
				podOf[p.Path] = src.pods[f]
			case manifests.CreateDir:
				createDirs = append(createDirs, p.Path)
			}
		}
	}
	if len(copyFiles)+len(copyDirs)+len(createDirs) == 0 {
		return set, nil
	}
	// One listing: the directories' modes and owners, and what the
	// directories to copy hold.
	var script []string
	for _, d := range append(slices.Clone(createDirs), copyDirs...) {
		q := node.ShellQuote(d)
		script = append(script, "if [ -d "+q+" ]; then stat -L -c 'D %a %u %g %n' "+q+"; fi")
	}
	for _, d := range copyDirs {
		q := node.ShellQuote(d)
		script = append(script, "if [ -d "+q+" ]; then find -H "+q+` -mindepth 1 \( -type d -printf 'D %m %U %G %p\n' \) -o \( -type f -printf 'F %s %p\n' \) -o -printf 'X %y %p\n'; fi`)
	}
	out, err := h.Output(ctx, strings.Join(script, "\n"))
	if err != nil {
		return nil, err
	}
	dirMode := map[string]node.File{}
	var listed []string
	var problems []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(line, " ", 5)
		switch {
		case len(f) == 5 && f[0] == "D":
			mode, _ := strconv.ParseUint(f[1], 8, 32)
			uid, _ := strconv.Atoi(f[2])
			gid, _ := strconv.Atoi(f[3])
			dirMode[f[4]] = node.File{Path: f[4], Dir: true, Mode: modeOr(permOf(mode), 0o755), UID: uid, GID: gid}
		case len(f) >= 3 && f[0] == "F":
			listed = append(listed, strings.Join(f[2:], " "))
		case len(f) >= 3 && f[0] == "X":
			problems = append(problems, fmt.Sprintf("%s is not a regular file (find type %s): haadm copies files only; replace it with a file or set it up on every new master yourself", strings.Join(f[2:], " "), f[1]))
		}
	}
	for _, d := range copyDirs {
		if _, ok := dirMode[d]; !ok {
			problems = append(problems, fmt.Sprintf("%s (%s) does not exist: the component needs it", d, set.why[d]))
		}
	}
	for _, p := range listed {
		set.why[p] = set.why[dirOf(p, copyDirs)]
		podOf[p] = podOf[dirOf(p, copyDirs)]
		required[p] = true
	}
	read := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(copyFiles), listed...))))
	got, err := h.ReadFiles(ctx, read)
	if err != nil {
		return nil, err
	}
	// One level of files named inside the files read: an admission
	// configuration's plugin configs, a webhook kubeconfig's certificates.
	var more []string
	for _, p := range read {
		if f, ok := got[p]; ok && len(f.Data) < 1<<20 {
			refs, err := manifests.References(podOf[p], f.Data)
			if err != nil {
				return nil, err
			}
			for _, r := range refs {
				if !slices.Contains(read, r.Path) && !slices.Contains(more, r.Path) {
					more = append(more, r.Path)
					set.why[r.Path] = r.Component + " (named in " + p + ")"
				}
			}
		}
	}
	if len(more) > 0 {
		// Only regular files: a socket or directory a configuration
		// names (a KMS socket, say) is not a file to copy.
		var test []string
		for _, p := range more {
			test = append(test, "if [ -f "+node.ShellQuote(p)+" ]; then printf '%s\\n' "+node.ShellQuote(p)+"; fi")
		}
		out, err := h.Output(ctx, strings.Join(test, "\n"))
		if err != nil {
			return nil, err
		}
		more = slices.DeleteFunc(strings.Split(strings.TrimSpace(out), "\n"), func(s string) bool { return s == "" })
	}
	if len(more) > 0 {
		extra, err := h.ReadFiles(ctx, more)
		if err != nil {
			return nil, err
		}
		for p, f := range extra {
			got[p] = f
		}
		read = append(read, more...)
	}
	total := 0
	for _, p := range read {
		f, ok := got[p]
		if !ok {
			if required[p] {
				problems = append(problems, fmt.Sprintf("%s is missing, but %s needs it", p, set.why[p]))
			}
			continue
		}
		total += len(f.Data)
		set.files = append(set.files, node.File{Path: p, Data: f.Data, Mode: f.Mode, UID: f.UID, GID: f.GID})
	}
	if total > maxHostFilesBytes {
		problems = append(problems, fmt.Sprintf("the host files of the control plane add up to %d bytes, more than haadm copies (%d): check the hostPath volumes", total, maxHostFilesBytes))
	}
	for _, d := range slices.Compact(slices.Sorted(slices.Values(createDirs))) {
		dir, ok := dirMode[d]
		if !ok {
			// Made by the kubelet on the first master when it starts the
			// pod; a new master gets the same default.
			dir = node.File{Path: d, Dir: true, Mode: 0o755}
		}
		set.dirs = append(set.dirs, dir)
	}
	for _, d := range copyDirs {
		if dir, ok := dirMode[d]; ok {
			set.dirs = append(set.dirs, dir)
		}
	}
	for p, d := range dirMode {
		if !slices.Contains(createDirs, p) && !slices.Contains(copyDirs, p) {
			set.dirs = append(set.dirs, d) // a subdirectory of a copied one
		}
	}
	slices.SortFunc(set.dirs, func(a, b node.File) int { return strings.Compare(a.Path, b.Path) })
	if len(problems) > 0 {
		return nil, fmt.Errorf("node %s: the control plane reads host files haadm cannot copy safely; nothing was changed:\n  - %s", first, strings.Join(problems, "\n  - "))
	}
	return set, nil
}

func dirOf(p string, dirs []string) string {
	for _, d := range dirs {
		if strings.HasPrefix(p, d+"/") {
			return d
		}
	}
	return path.Dir(p)
}

func (HostFiles) Plan(ctx context.Context, c *Cluster) (*Work, error) {
	set, err := c.hostFiles(ctx)
	if err != nil {
		return nil, err
	}
	w := &Work{PerNode: true}
	if len(set.files)+len(set.dirs) == 0 {
		return w, nil
	}
	if err := w.planNodes(len(c.New), func(i int) (*Step, error) { return planHostFiles(ctx, c, set, c.New[i].Name) }); err != nil {
		return nil, err
	}
	return w, nil
}

func planHostFiles(ctx context.Context, c *Cluster, set *hostSet, n string) (*Step, error) {
	h := c.Host(n)
	var paths []string
	for _, f := range set.files {
		paths = append(paths, f.Path)
	}
	have, err := h.ReadFiles(ctx, paths)
	if err != nil {
		return nil, err
	}
	var check []string
	for _, d := range set.dirs {
		q := node.ShellQuote(d.Path)
		check = append(check, "if [ -d "+q+" ]; then printf '%s\\n' "+q+"; fi")
	}
	var existing []string
	if len(check) > 0 {
		out, err := h.Output(ctx, strings.Join(check, "\n"))
		if err != nil {
			return nil, err
		}
		existing = strings.Split(strings.TrimSpace(out), "\n")
	}
	var files []node.File
	var details []string
	for _, d := range set.dirs {
		if !slices.Contains(existing, d.Path) {
			files = append(files, d)
			details = append(details, fmt.Sprintf("%s/: directory, mode %04o, owner %s (%s)", d.Path, d.Mode, d.Owner(), set.why[d.Path]))
		}
	}
	for _, f := range set.files {
		cur, ok := have[f.Path]
		if ok && (set.ifMissing[f.Path] || string(cur.Data) == string(f.Data) && cur.Mode == f.Mode && cur.UID == f.UID && cur.GID == f.GID) {
			continue
		}
		files = append(files, f)
		details = append(details, fileDetail(f.Path, have, f.Data, fmt.Sprintf("copy from %s, mode %04o, owner %s (%s)", c.First.Name, f.Mode, f.Owner(), set.why[f.Path])))
	}
	if len(files) == 0 {
		return nil, nil
	}
	return &Step{
		Node: n, What: fmt.Sprintf("%d host files and directories (%s)", len(files), shortList(files)), Details: details,
		Do: func(ctx context.Context) error { return h.WriteFiles(ctx, files) },
	}, nil
}

// checkHostFiles refuses to start a member or an apiserver on node n while
// it lacks a host file the control plane reads: an apiserver without its
// encryption configuration would crash-loop with etcd already grown.
func (c *Cluster) checkHostFiles(ctx context.Context, n string) error {
	set, err := c.hostFiles(ctx)
	if err != nil {
		return err
	}
	if len(set.files)+len(set.dirs) == 0 {
		return nil
	}
	s, err := planHostFiles(ctx, c, set, n)
	if err != nil {
		return err
	}
	if s != nil {
		return fmt.Errorf("the control plane's host files are not all there (%s): run `haadm phase host-files` first (nothing was changed)", s.What)
	}
	return nil
}
