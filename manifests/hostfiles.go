package manifests

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// HostPathKind is what a new master must have at a host path.
type HostPathKind string

const (
	// CopyFile: a file the component reads (an encryption config, an
	// audit policy, a CA bundle): the first master's, byte for byte.
	CopyFile HostPathKind = "copy file"
	// CopyDir: a directory the component reads and no flag names a file
	// in: every file in it, from the first master.
	CopyDir HostPathKind = "copy directory"
	// CreateDir: a directory the component writes to (an audit log
	// directory) or whose files are copied one by one: made, never copied.
	CreateDir HostPathKind = "create directory"
)

// HostPath is something a control-plane static pod reads or writes on the
// host beyond what kubeadm gives every master (PKI, kubeconfigs, CA
// bundles, etcd data).
type HostPath struct {
	Path      string
	Kind      HostPathKind
	Component string
	// Why names the flag or volume that needs it.
	Why string
	// Optional files may be absent on the first master (FileOrCreate
	// volumes, paths found inside other files); others must be there.
	Optional bool
	// IfMissing files are copied only to a master that lacks them: a
	// file in a CA-bundle directory the operating system fills on its own.
	IfMissing bool
}

// outputFlags name files a component writes: their directory is made on a
// new master, the file itself never copied.
func outputFlags() []string {
	return []string{"audit-log-path", "log-file", "log-dir", "profiling-output"}
}

// kubeadmOwned are host paths kubeadm sets up on every control-plane node
// (or haadm's other phases write): nothing to copy.
func kubeadmOwned(p string) bool {
	switch p {
	case "/etc/kubernetes/pki", "/etc/kubernetes/pki/etcd", "/var/lib/etcd",
		"/etc/ssl/certs", "/etc/ca-certificates", "/usr/share/ca-certificates", "/usr/local/share/ca-certificates",
		"/etc/pki", "/etc/pki/ca-trust", "/etc/pki/tls/certs",
		"/etc/kubernetes/controller-manager.conf", "/etc/kubernetes/scheduler.conf", "/etc/kubernetes/admin.conf",
		"/usr/libexec/kubernetes/kubelet-plugins/volume/exec":
		return true
	}
	return false
}

// kubeadmPKIFile reports whether a file under the PKI directory is one the
// certs phase writes (shared material or a per-node certificate).
func kubeadmPKIFile(p string) bool {
	rel, ok := strings.CutPrefix(p, "/etc/kubernetes/pki/")
	if !ok {
		return false
	}
	switch rel {
	case "ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key",
		"apiserver.crt", "apiserver.key", "apiserver-kubelet-client.crt", "apiserver-kubelet-client.key",
		"front-proxy-client.crt", "front-proxy-client.key", "apiserver-etcd-client.crt", "apiserver-etcd-client.key",
		"etcd/ca.crt", "etcd/ca.key", "etcd/server.crt", "etcd/server.key", "etcd/peer.crt", "etcd/peer.key",
		"etcd/healthcheck-client.crt", "etcd/healthcheck-client.key":
		return true
	}
	return false
}

// HostPaths lists what the static pod src (as the first master runs it)
// reads and writes on the host beyond kubeadm's own files: every file a
// flag names through a hostPath volume, every other hostPath volume, and
// the directories of output files. Paths the pod reaches without a
// hostPath volume are not on the host and are ignored.
func HostPaths(src []byte) ([]HostPath, error) {
	pod, err := Decode(src)
	if err != nil {
		return nil, err
	}
	component := componentOf(pod)
	ms := mountsOf(pod)
	toHost := ms.toHost
	out := map[string]HostPath{}
	add := func(h HostPath) {
		if have, ok := out[h.Path]; ok && have.Kind != CreateDir {
			return // a file or directory to copy says more than "create"
		}
		out[h.Path] = h
	}
	covered := map[string]bool{} // volumes a flag already accounted for
	for _, c := range pod.Spec.Containers {
		for _, arg := range append(slices.Clone(c.Command), c.Args...) {
			name, value, ok := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
			if !ok || !strings.HasPrefix(arg, "--") {
				continue
			}
			for _, v := range strings.Split(value, ",") {
				if !path.IsAbs(v) {
					continue
				}
				m, host, ok := toHost(v)
				if !ok {
					continue
				}
				covered[m.name] = true
				why := "--" + name
				switch {
				case slices.Contains(outputFlags(), name):
					dir := host
					if name != "log-dir" {
						dir = path.Dir(host)
					}
					if !kubeadmOwned(dir) {
						add(HostPath{Path: dir, Kind: CreateDir, Component: component, Why: why})
					}
				case kubeadmOwned(host) || kubeadmPKIFile(host):
				case kubeadmOwned(path.Dir(host)) && !strings.HasPrefix(host, "/etc/kubernetes/pki/"):
					// A CA-bundle directory the operating system fills on
					// every machine: bring the file only where it lacks.
					add(HostPath{Path: host, Kind: CopyFile, Component: component, Why: why, IfMissing: true})
				default:
					add(HostPath{Path: host, Kind: CopyFile, Component: component, Why: why})
					if dir := path.Dir(host); m.host != host && !kubeadmOwned(m.host) {
						add(HostPath{Path: dir, Kind: CreateDir, Component: component, Why: why})
					}
				}
			}
		}
	}
	for _, m := range ms {
		if covered[m.name] || kubeadmOwned(m.host) {
			continue
		}
		kind := CopyDir
		switch t := hostPathType(m.vol); t {
		case corev1.HostPathFile:
			kind = CopyFile
		case corev1.HostPathFileOrCreate:
			add(HostPath{Path: m.host, Kind: CopyFile, Component: component, Why: "volume " + m.name, Optional: true})
			continue
		case corev1.HostPathDirectoryOrCreate:
			// The kubelet makes it if it is missing: the component
			// writes there, or reads what it finds.
			kind = CreateDir
		case corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev:
			return nil, fmt.Errorf("%s: volume %s mounts %s (%s) from the host: haadm cannot copy it; remove it from the manifest or set it up on every new master first", component, m.name, m.host, t)
		}
		add(HostPath{Path: m.host, Kind: kind, Component: component, Why: "volume " + m.name})
	}
	list := make([]HostPath, 0, len(out))
	for _, h := range out {
		list = append(list, h)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	return list, nil
}

// mount is a hostPath volume as one container sees it.
type mount struct {
	in, host string
	vol      *corev1.HostPathVolumeSource
	name     string
}

type mounts []mount

func mountsOf(pod *corev1.Pod) mounts {
	vols := map[string]*corev1.HostPathVolumeSource{}
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			vols[v.Name] = v.HostPath
		}
	}
	var ms mounts
	for _, c := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
		for _, m := range c.VolumeMounts {
			if hp, ok := vols[m.Name]; ok {
				host := hp.Path
				if m.SubPath != "" {
					host = path.Join(hp.Path, m.SubPath)
				}
				ms = append(ms, mount{in: path.Clean(m.MountPath), host: path.Clean(host), vol: hp, name: m.Name})
			}
		}
	}
	// The longest mount path wins, as in the container's mount table.
	sort.SliceStable(ms, func(i, j int) bool { return len(ms[i].in) > len(ms[j].in) })
	return ms
}

// toHost maps a path inside the container to the host, through the
// hostPath volume that holds it.
func (ms mounts) toHost(p string) (mount, string, bool) {
	p = path.Clean(p)
	for _, m := range ms {
		if p == m.in {
			return m, m.host, true
		}
		if rel, ok := strings.CutPrefix(p, m.in+"/"); ok {
			return m, path.Join(m.host, rel), true
		}
	}
	return mount{}, "", false
}

// References are the host files that data (a file a component reads, such
// as an admission configuration or a webhook kubeconfig) names by paths
// the pod src can reach through its hostPath volumes. They are Optional:
// a path in a comment or an example is no reason to refuse.
func References(src, data []byte) ([]HostPath, error) {
	pod, err := Decode(src)
	if err != nil {
		return nil, err
	}
	component := componentOf(pod)
	ms := mountsOf(pod)
	absPath := regexp.MustCompile(`(?:^|[\s"':=])(/[A-Za-z0-9._/-]+)`)
	seen := map[string]bool{}
	var out []HostPath
	for _, m := range absPath.FindAllStringSubmatch(string(data), -1) {
		mt, host, ok := ms.toHost(m[1])
		if !ok || host == mt.host && mt.vol != nil && hostPathType(mt.vol) != corev1.HostPathFile || seen[host] {
			continue
		}
		seen[host] = true
		if kubeadmOwned(host) || kubeadmPKIFile(host) {
			continue
		}
		out = append(out, HostPath{Path: host, Kind: CopyFile, Component: component, Why: "named in a file it reads", Optional: true})
	}
	return out, nil
}

// componentOf names a static pod by its container, as kubeadm does
// (kube-apiserver), falling back to the pod's name.
func componentOf(pod *corev1.Pod) string {
	if len(pod.Spec.Containers) > 0 {
		return pod.Spec.Containers[0].Name
	}
	return pod.Name
}

func hostPathType(v *corev1.HostPathVolumeSource) corev1.HostPathType {
	if v.Type == nil {
		return corev1.HostPathUnset
	}
	return *v.Type
}
