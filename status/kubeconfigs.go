package status

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/lb"
)

// statusFiles are the files status reads on every node: which of them
// matter depends on the node's role, known only later (see readHostFiles).
func statusFiles() []string {
	var paths []string
	for _, e := range lb.Engines() {
		paths = append(paths, e.ConfPath())
	}
	for _, r := range controlplane.Kubeconfigs(true) {
		paths = append(paths, kubeconfigPath(r.File))
	}
	return paths
}

func kubeconfigPath(file string) string { return path.Join(controlplane.KubernetesDir, file) }

// kubeconfigWant is what a kubeconfig on node should point at, by
// controlplane's rules; why says why want is unknown when it is "".
func (t *topology) kubeconfigWant(node, file string) (want string, alternatives []string, why string) {
	rule, ok := controlplane.KubeconfigTarget(file, t.isMaster(node))
	if !ok {
		return "", nil, fmt.Sprintf("no rule for %s on node %s", file, node)
	}
	want, why = t.resolve(rule.Target, node)
	// An alternative exists only once there is an endpoint: without one,
	// "the endpoint" is the first master's apiserver, where no other
	// master's kubelet should point.
	if rule.Also == controlplane.TargetEndpoint && t.endpoint != "" && !sameServer(t.server, want) {
		alternatives = []string{t.server}
	}
	return want, alternatives, why
}

// resolve is the server URL a kubeconfig target means for node.
func (t *topology) resolve(target controlplane.Target, node string) (server, why string) {
	if target == controlplane.TargetEndpoint {
		return t.server, t.serverErr
	}
	if own := t.own(node); own != "" {
		return own, ""
	}
	return "", "no address known for node " + node
}

// kubeconfigRows checks the kubeconfigs of every node that has files.
func kubeconfigRows(t *topology, files map[string]hostFiles) []Kubeconfig {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	rows := []Kubeconfig{}
	for _, n := range names {
		if !t.isMaster(n) && !t.isWorker(n) {
			continue // a machine that is no node: nothing kubeadm wrote
		}
		for _, rule := range controlplane.Kubeconfigs(t.isMaster(n)) {
			r := files[n][kubeconfigPath(rule.File)]
			rows = append(rows, kubeconfigRow(t, n, rule.File, r.data, r.err))
		}
	}
	return rows
}

func kubeconfigRow(t *topology, node, file string, data []byte, readErr error) Kubeconfig {
	row := Kubeconfig{Node: node, File: file}
	var why string
	row.Want, row.Alternatives, why = t.kubeconfigWant(node, file)
	if readErr != nil {
		row.Error = fileError(kubeconfigPath(file), readErr)
		return row
	}
	server, err := kubeconfigServer(data)
	if err != nil {
		row.Error = err.Error()
		return row
	}
	row.Server = server
	row.Target = t.target(server, node)
	if row.Want == "" {
		row.Error = "cannot tell what it should point at: " + why
		return row
	}
	row.OK = sameServer(server, row.Want)
	for _, a := range row.Alternatives {
		row.OK = row.OK || sameServer(server, a)
	}
	return row
}

func fileError(path string, err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return path + " does not exist"
	}
	return err.Error()
}

// kubeconfigServer returns the server a client of this kubeconfig uses:
// the current context's cluster or, for kubeconfigs without contexts such
// as cluster-info's, the only cluster.
func kubeconfigServer(data []byte) (string, error) {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return "", fmt.Errorf("kubeconfig: %w", err)
	}
	if ctx, ok := cfg.Contexts[cfg.CurrentContext]; ok {
		if c, ok := cfg.Clusters[ctx.Cluster]; ok {
			return c.Server, nil
		}
		return "", fmt.Errorf("kubeconfig: context %q names unknown cluster %q", cfg.CurrentContext, ctx.Cluster)
	}
	if len(cfg.Clusters) == 1 {
		for _, c := range cfg.Clusters {
			return c.Server, nil
		}
	}
	return "", fmt.Errorf("kubeconfig: no current context and %d clusters", len(cfg.Clusters))
}

// configMapRows checks the kubeconfigs that clients bootstrap from.
func configMapRows(t *topology, d *apiData) []ConfigMap {
	rows := []ConfigMap{}
	for _, ref := range clientConfigMaps() {
		row := ConfigMap{Name: ref.String(), Key: ref.key, Want: t.server}
		rows = append(rows, row)
		r := &rows[len(rows)-1]
		if err := d.cmErrs[ref.String()]; err != nil {
			if ref.name == "kube-proxy" && apierrors.IsNotFound(err) {
				r.Absent, r.OK = true, true
				continue
			}
			r.Error = err.Error()
			continue
		}
		cm := d.configMaps[ref.String()]
		if ref.name == "cluster-info" {
			signed := false
			for k := range cm.Data {
				signed = signed || strings.HasPrefix(k, "jws-kubeconfig-")
			}
			r.Signed = &signed
		}
		data, ok := cm.Data[ref.key]
		if !ok {
			r.Error = fmt.Sprintf("no key %s", ref.key)
			continue
		}
		server, err := kubeconfigServer([]byte(data))
		if err != nil {
			r.Error = err.Error()
			continue
		}
		r.Server = server
		r.Target = t.target(server, "")
		if r.Want == "" {
			r.Error = "cannot tell what it should point at: " + t.serverErr
			continue
		}
		r.OK = sameServer(server, r.Want)
	}
	return rows
}
