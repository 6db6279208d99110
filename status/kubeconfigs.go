package status

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
)

// Files read on every node.
const (
	kubernetesDir = "/etc/kubernetes/"
	nginxConf     = "/etc/nginx/nginx.conf"
	kubeletConf   = "kubelet.conf"
)

// statusFiles are the files status reads on every node.
func statusFiles() []string {
	paths := []string{nginxConf}
	for _, f := range masterKubeconfigs() {
		paths = append(paths, kubernetesDir+f)
	}
	return paths
}

// masterKubeconfigs are the kubeconfigs of a control-plane node, in the
// order the report lists them; workers only have kubelet.conf.
func masterKubeconfigs() []string {
	return []string{"admin.conf", kubeletConf, "controller-manager.conf", "scheduler.conf"}
}

// kubeconfigWant is what a kubeconfig on node should point at; why says
// why want is unknown when it is "".
func (t *topology) kubeconfigWant(node, file string) (want string, alternatives []string, why string) {
	own, ownWhy := t.own(node), ""
	if own == "" {
		ownWhy = "no address known for node " + node
	}
	switch {
	case file == kubeletConf && t.isMaster(node):
		// kubeadm >= 1.33 points a master's kubelet at its own apiserver;
		// older ones and haadm's endpoint mode use the endpoint. Both
		// survive the loss of another master.
		if t.endpoint != "" && !sameServer(t.server, own) {
			alternatives = []string{t.server}
		}
		return own, alternatives, ownWhy
	case file == kubeletConf, file == "admin.conf":
		return t.server, nil, t.serverErr
	default:
		// controller-manager and scheduler talk to their own apiserver,
		// as kubeadm sets them up since 1.30.
		return own, nil, ownWhy
	}
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
		var list []string
		switch {
		case t.isMaster(n):
			list = masterKubeconfigs()
		case t.isWorker(n):
			list = []string{kubeletConf}
		}
		for _, f := range list {
			r := files[n][kubernetesDir+f]
			rows = append(rows, kubeconfigRow(t, n, f, r.data, r.err))
		}
	}
	return rows
}

func kubeconfigRow(t *topology, node, file string, data []byte, readErr error) Kubeconfig {
	row := Kubeconfig{Node: node, File: file}
	var why string
	row.Want, row.Alternatives, why = t.kubeconfigWant(node, file)
	if readErr != nil {
		row.Error = fileError(kubernetesDir+file, readErr)
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
