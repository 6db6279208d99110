package lb

// NodeLocal returns the configuration of the node-local mode: every node runs
// its own proxy on 127.0.0.1 and its kubelet (and kube-proxy) talk to that,
// so no external load balancer is needed. The port is DefaultNodeLocalPort,
// not 6443, because on a control-plane node kube-apiserver already holds
// 6443 on every address.
func NodeLocal(backends []Backend) Config {
	return Config{
		ListenAddress: "127.0.0.1",
		ListenPort:    DefaultNodeLocalPort,
		Backends:      append([]Backend(nil), backends...),
	}
}
