package main

import (
	"fmt"
	"net"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// requestTimeout bounds every probe request: a dead server costs a probe
// this much, and the next attempts do not wait for it.
const requestTimeout = 2 * time.Second

// restConfig is the lab's admin credentials aimed at server, without
// client-go's client-side rate limit: its default of 5 requests a second
// queued the probes (ten a second per target) and the e2e test once
// reported an 18 s failover that was that queue.
func restConfig(kubeconfig, server string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	cfg = rest.CopyConfig(cfg)
	if server != "" {
		cfg.Host = server
	}
	cfg.Timeout = requestTimeout
	cfg.QPS = -1
	return cfg, nil
}

// client is a client sharing its connection across requests, as a
// long-running client (kubelet, a controller) would.
func client(kubeconfig, server string) (kubernetes.Interface, error) {
	cfg, err := restConfig(kubeconfig, server)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// freshClient is a client on a connection of its own: a custom dialer
// keeps client-go from handing out its cached transport, so a failover
// attempt never rides a connection to the dead master.
func freshClient(kubeconfig, server string) (kubernetes.Interface, error) {
	cfg, err := restConfig(kubeconfig, server)
	if err != nil {
		return nil, err
	}
	cfg.Dial = (&net.Dialer{Timeout: time.Second}).DialContext
	return kubernetes.NewForConfig(cfg)
}
