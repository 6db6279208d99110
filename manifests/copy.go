package manifests

import (
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
)

// ControllerManager returns the kube-controller-manager.yaml for another
// master. kubeadm renders it from cluster-wide settings only (it binds and is
// probed on 127.0.0.1 and reads /etc/kubernetes/controller-manager.conf,
// whose content, not path, differs per node), so src is returned unchanged.
// It fails if the manifest was customised with a node's own address, which
// could not be right on another node.
func ControllerManager(src []byte) ([]byte, error) {
	return nodeAgnostic(src, "kube-controller-manager")
}

// Scheduler is ControllerManager for kube-scheduler.yaml.
func Scheduler(src []byte) ([]byte, error) {
	return nodeAgnostic(src, "kube-scheduler")
}

func nodeAgnostic(src []byte, component string) ([]byte, error) {
	pod, err := decodeComponent(src, component)
	if err != nil {
		return nil, err
	}
	if bind, ok := Flag(pod, "bind-address"); ok && nodeSpecific(bind) {
		return nil, fmt.Errorf("%s: --bind-address=%s is an address of the source node; set it per node (kubeadm patches) before copying", component, bind)
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p == nil {
				continue
			}
			if p.HTTPGet != nil && nodeSpecific(p.HTTPGet.Host) {
				return nil, fmt.Errorf("%s: container %s probes host %s, an address of the source node", component, c.Name, p.HTTPGet.Host)
			}
			if p.TCPSocket != nil && nodeSpecific(p.TCPSocket.Host) {
				return nil, fmt.Errorf("%s: container %s probes host %s, an address of the source node", component, c.Name, p.TCPSocket.Host)
			}
		}
	}
	return src, nil
}

// nodeSpecific reports whether host is an IP that only makes sense on one
// node: not loopback, not a wildcard. Host names and "" are taken as
// node-agnostic.
func nodeSpecific(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && !ip.IsLoopback() && !ip.IsUnspecified()
}
