package certs

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// RenderKubeconfig renders a kubeconfig the way kubeadm writes admin.conf,
// controller-manager.conf and scheduler.conf: one cluster named clusterName
// (kubeadm-config's clusterName, usually "kubernetes"), one user, the
// context "<user>@<cluster>" as current context, and the CA, client
// certificate and key embedded as data.
func RenderKubeconfig(clusterName, server string, caPEM []byte, user string, clientCertPEM, clientKeyPEM []byte) ([]byte, error) {
	if clusterName == "" || user == "" {
		return nil, errors.New("kubeconfig: cluster name and user are required")
	}
	if err := checkServer(server); err != nil {
		return nil, err
	}
	if len(caPEM) == 0 || len(clientCertPEM) == 0 || len(clientKeyPEM) == 0 {
		return nil, errors.New("kubeconfig: CA, client certificate and client key are required")
	}
	contextName := fmt.Sprintf("%s@%s", user, clusterName)
	cfg := clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{
			clusterName: {Server: server, CertificateAuthorityData: caPEM},
		},
		Contexts: map[string]*clientcmdapi.Context{
			contextName: {Cluster: clusterName, AuthInfo: user},
		},
		AuthInfos: map[string]*clientcmdapi.AuthInfo{
			user: {ClientCertificateData: clientCertPEM, ClientKeyData: clientKeyPEM},
		},
		CurrentContext: contextName,
	}
	out, err := clientcmd.Write(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return out, nil
}

// SetServer points every cluster entry of a kubeconfig at server and keeps
// the rest, including credentials that are file references (the kubelet.conf
// of a node that finished TLS bootstrap names
// /var/lib/kubelet/pki/kubelet-client-current.pem). When nothing changes it
// returns the input untouched, so re-running haadm writes nothing.
func SetServer(kubeconfigYAML []byte, server string) (out []byte, changed bool, err error) {
	if err := checkServer(server); err != nil {
		return nil, false, err
	}
	cfg, err := clientcmd.Load(kubeconfigYAML)
	if err != nil {
		return nil, false, fmt.Errorf("kubeconfig: %w", err)
	}
	if len(cfg.Clusters) == 0 {
		return nil, false, errors.New("kubeconfig has no cluster entry")
	}
	for _, cluster := range cfg.Clusters {
		if cluster.Server != server {
			cluster.Server = server
			changed = true
		}
	}
	if !changed {
		return kubeconfigYAML, false, nil
	}
	if out, ok := replaceServerLines(kubeconfigYAML, server, cfg); ok {
		return out, true, nil
	}
	out, err = clientcmd.Write(*cfg)
	if err != nil {
		return nil, false, fmt.Errorf("kubeconfig: %w", err)
	}
	return out, true, nil
}

// replaceServerLines edits only the "server:" lines, so a file written by
// another tool keeps its layout and a diff shows one line per cluster. The
// result is accepted only if it parses to exactly want.
func replaceServerLines(in []byte, server string, want *clientcmdapi.Config) ([]byte, bool) {
	lines := strings.Split(string(in), "\n")
	for i, l := range lines {
		trimmed := strings.TrimLeft(l, " ")
		if strings.HasPrefix(trimmed, "server: ") {
			lines[i] = l[:len(l)-len(trimmed)] + "server: " + server
		}
	}
	out := []byte(strings.Join(lines, "\n"))
	got, err := clientcmd.Load(out)
	if err != nil || !apiequality.Semantic.DeepEqual(got, want) {
		return nil, false
	}
	return out, true
}

// Server returns the server of the current context's cluster: the one a
// client using this kubeconfig talks to.
func Server(kubeconfigYAML []byte) (string, error) {
	cfg, err := clientcmd.Load(kubeconfigYAML)
	if err != nil {
		return "", fmt.Errorf("kubeconfig: %w", err)
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return "", fmt.Errorf("kubeconfig: current context %q does not exist", cfg.CurrentContext)
	}
	cluster, ok := cfg.Clusters[ctx.Cluster]
	if !ok {
		return "", fmt.Errorf("kubeconfig: context %q names unknown cluster %q", cfg.CurrentContext, ctx.Cluster)
	}
	return cluster.Server, nil
}

// ClientCertOf returns the embedded client certificate of the current
// context's user (haadm writes kubeconfigs with embedded data, as kubeadm does).
func ClientCertOf(kubeconfigYAML []byte) ([]byte, error) {
	cfg, err := clientcmd.Load(kubeconfigYAML)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return nil, fmt.Errorf("kubeconfig: current context %q does not exist", cfg.CurrentContext)
	}
	user, ok := cfg.AuthInfos[ctx.AuthInfo]
	if !ok || len(user.ClientCertificateData) == 0 {
		return nil, fmt.Errorf("kubeconfig: user %q has no embedded client certificate", ctx.AuthInfo)
	}
	return user.ClientCertificateData, nil
}

// checkServer insists on https://host[:port]: the apiserver serves nothing
// else, and a typo here would lock components out of the cluster.
func checkServer(server string) error {
	u, err := url.Parse(server)
	if err != nil {
		return fmt.Errorf("server %q: %w", server, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("server %q is not an https://host:port URL", server)
	}
	return nil
}
