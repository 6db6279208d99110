package manifests

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/haadm/haadm/controlplane"
)

const apiServerEndpointAnnotation = controlplane.AdvertiseAnnotation

// APIServer makes node n's kube-apiserver.yaml from another master's. What
// kubeadm derives from the node's advertise address changes: the
// --advertise-address flag (and --bind-address if it was pinned to the
// source node), the advertise-address endpoint annotation that kubeadm reads
// back to find the control-plane endpoints, the probe hosts, and
// --etcd-servers, which must name the node's own etcd member. The port stays
// whatever --secure-port says.
func APIServer(src []byte, n Node) ([]byte, error) {
	if err := n.validate(); err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	pod, err := decodeComponent(src, "kube-apiserver")
	if err != nil {
		return nil, err
	}
	oldIP, _ := Flag(pod, "advertise-address")
	port, ok := Flag(pod, "secure-port")
	if !ok || port == "" {
		port = strconv.Itoa(controlplane.DefaultAPIServerPort)
	}

	SetFlag(pod, "advertise-address", n.IP)
	if bind, ok := Flag(pod, "bind-address"); ok && sameIP(bind, oldIP) {
		SetFlag(pod, "bind-address", n.IP)
	}
	if err := setLocalEtcdServers(pod, oldIP, n.IP); err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[apiServerEndpointAnnotation] = net.JoinHostPort(n.IP, port)
	replaceProbeHosts(pod, oldIP, n.IP)
	return Encode(pod)
}

// setLocalEtcdServers points the apiserver at the etcd member on its own
// node, as kubeadm does for stacked etcd: an apiserver that kept talking to
// the first master's etcd would go down with it. An external etcd cluster
// (URLs that are neither loopback nor the source node) is shared by all
// apiservers and stays untouched.
func setLocalEtcdServers(pod *corev1.Pod, oldIP, newIP string) error {
	servers, _ := Flag(pod, "etcd-servers")
	scheme, port := "https", strconv.Itoa(controlplane.EtcdClientPort)
	if servers != "" {
		for i, s := range strings.Split(servers, ",") {
			u, err := url.Parse(s)
			if err != nil {
				return fmt.Errorf("--etcd-servers: %w", err)
			}
			ip := net.ParseIP(u.Hostname())
			if ip == nil || !(ip.IsLoopback() || sameIP(u.Hostname(), oldIP)) {
				return nil
			}
			if i == 0 && u.Port() != "" {
				scheme, port = u.Scheme, u.Port()
			}
		}
	}
	SetFlag(pod, "etcd-servers", endpoint{scheme: scheme, port: port}.url(loopback(newIP)))
	return nil
}

// replaceProbeHosts moves probes that targeted the source node's address to
// the new node; probes on loopback (or with no host) are node-agnostic.
func replaceProbeHosts(pod *corev1.Pod, oldIP, newIP string) {
	if oldIP == "" {
		return
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p == nil {
				continue
			}
			if h := p.HTTPGet; h != nil && sameIP(h.Host, oldIP) {
				h.Host = newIP
			}
			if t := p.TCPSocket; t != nil && sameIP(t.Host, oldIP) {
				t.Host = newIP
			}
		}
	}
}
