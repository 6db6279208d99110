package lb

import (
	"bytes"
	"fmt"
	"net"
	"time"
)

// unchecked names the backup twin of each server.
const unchecked = "-unchecked"

// fastInter is a quarter of the check interval, at least 100ms.
func fastInter(inter time.Duration) time.Duration {
	return max(inter/4, 100*time.Millisecond)
}

// RenderHAProxy returns a complete haproxy.cfg equivalent to RenderNginx's
// output, for operators who prefer haproxy. Unlike open-source nginx, haproxy
// checks backends actively: GET /readyz over TLS (certificate not verified,
// the check only needs the status code; /readyz is readable anonymously in
// kubeadm clusters), so an apiserver that is up but not ready - e.g. cut off
// from etcd - stops receiving new connections.
//
// The global section matches Debian's packaged defaults (chroot, haproxy
// user, admin socket).
func RenderHAProxy(cfg Config) ([]byte, error) {
	c := cfg.withDefaults(defaultHAProxyPIDFile)
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("haproxy config: %w", err)
	}
	var b bytes.Buffer
	header(&b, c)
	fmt.Fprintf(&b, "global\n")
	fmt.Fprintf(&b, "    log /dev/log local0\n")
	fmt.Fprintf(&b, "    chroot /var/lib/haproxy\n")
	fmt.Fprintf(&b, "    stats socket /run/haproxy/admin.sock mode 660 level admin\n")
	fmt.Fprintf(&b, "    user haproxy\n")
	fmt.Fprintf(&b, "    group haproxy\n")
	fmt.Fprintf(&b, "    pidfile %s\n", c.PIDFile)
	fmt.Fprintf(&b, "    daemon\n\n")
	fmt.Fprintf(&b, "defaults\n")
	fmt.Fprintf(&b, "    log global\n")
	fmt.Fprintf(&b, "    mode tcp\n")
	fmt.Fprintf(&b, "    option tcplog\n")
	fmt.Fprintf(&b, "    option dontlognull\n")
	fmt.Fprintf(&b, "    # Give up on a dead apiserver quickly and try the next one.\n")
	fmt.Fprintf(&b, "    timeout connect %s\n", confDuration(c.ConnectTimeout))
	fmt.Fprintf(&b, "    # Watches are long-lived and may stay idle for minutes.\n")
	fmt.Fprintf(&b, "    timeout client %s\n", confDuration(c.ProxyTimeout))
	fmt.Fprintf(&b, "    timeout server %s\n", confDuration(c.ProxyTimeout))
	fmt.Fprintf(&b, "    timeout check %s\n\n", confDuration(c.ConnectTimeout))
	fmt.Fprintf(&b, "frontend %s\n", UpstreamName)
	fmt.Fprintf(&b, "    bind %s\n", net.JoinHostPort(c.ListenAddress, fmt.Sprint(c.ListenPort)))
	fmt.Fprintf(&b, "    default_backend %s\n\n", UpstreamName)
	fmt.Fprintf(&b, "backend %s\n", UpstreamName)
	fmt.Fprintf(&b, "    balance roundrobin\n")
	fmt.Fprintf(&b, "    # A connection an apiserver refuses or leaves unanswered is retried\n")
	fmt.Fprintf(&b, "    # on another at once, not on the same one: before the checks mark a\n")
	fmt.Fprintf(&b, "    # dead apiserver down, clients lose one connect timeout, not three.\n")
	fmt.Fprintf(&b, "    retries 2\n")
	fmt.Fprintf(&b, "    option redispatch 1\n")
	fmt.Fprintf(&b, "    option httpchk GET /readyz\n")
	fmt.Fprintf(&b, "    http-check expect status 200\n")
	fmt.Fprintf(&b, "    # Sessions of a server marked down are left alone: while etcd elects\n")
	fmt.Fprintf(&b, "    # a leader every server is, and cutting them broke requests that\n")
	fmt.Fprintf(&b, "    # the apiserver was about to answer. A dead one's die with it.\n")
	fmt.Fprintf(&b, "    # After a first failed check, checks come every fastinter: a dead\n")
	fmt.Fprintf(&b, "    # apiserver is out within inter + fall x fastinter.\n")
	fmt.Fprintf(&b, "    default-server check check-ssl verify none inter %s fastinter %s rise %d fall %d\n",
		confDuration(c.CheckInterval), confDuration(fastInter(c.CheckInterval)), c.Rise, c.Fall)
	for _, be := range c.Backends {
		fmt.Fprintf(&b, "    server %s %s\n", be.name(), be.hostPort())
	}
	fmt.Fprintf(&b, "    # While etcd elects a leader every /readyz fails at once, and with\n")
	fmt.Fprintf(&b, "    # every server down haproxy would drop every client: the same\n")
	fmt.Fprintf(&b, "    # apiservers, unchecked, carry the traffic until one is ready again.\n")
	fmt.Fprintf(&b, "    option allbackups\n")
	for _, be := range c.Backends {
		fmt.Fprintf(&b, "    server %s%s %s backup no-check\n", be.name(), unchecked, be.hostPort())
	}
	return b.Bytes(), nil
}
