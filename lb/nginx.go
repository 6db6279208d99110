package lb

import (
	"bytes"
	"fmt"
	"net"
)

// UpstreamName names the apiservers in every file haadm writes; status
// and the parsers look for it.
const UpstreamName = "kube_apiserver"

// RenderNginx returns a complete nginx.conf that proxies TCP connections on
// the listen address to the apiservers (stream module, no TLS termination:
// clients keep authenticating to the apiservers with their own certificates).
//
// The layout follows Debian's packaging: modules come from
// /etc/nginx/modules-enabled (libnginx-mod-stream puts its load_module
// there), the pid file is the one the systemd unit watches.
func RenderNginx(cfg Config) ([]byte, error) {
	c := cfg.withDefaults(defaultNginxPIDFile)
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("nginx config: %w", err)
	}
	var b bytes.Buffer
	header(&b, c)
	if c.NginxStreamModule != "" {
		fmt.Fprintf(&b, "load_module %s;\n", c.NginxStreamModule)
	}
	// Debian's packaged nginx.conf runs workers as www-data; without the
	// directive they would run as nobody.
	fmt.Fprintf(&b, "user www-data;\n")
	fmt.Fprintf(&b, "worker_processes auto;\n")
	fmt.Fprintf(&b, "pid %s;\n", c.PIDFile)
	fmt.Fprintf(&b, "error_log %s;\n", c.ErrorLog)
	fmt.Fprintf(&b, "include /etc/nginx/modules-enabled/*.conf;\n\n")
	fmt.Fprintf(&b, "events {\n    worker_connections 1024;\n}\n\n")
	fmt.Fprintf(&b, "stream {\n")
	fmt.Fprintf(&b, "    # Passive health checks only (open-source nginx): a backend that\n")
	fmt.Fprintf(&b, "    # fails max_fails connections within fail_timeout rests for fail_timeout.\n")
	fmt.Fprintf(&b, "    upstream %s {\n", UpstreamName)
	for _, be := range c.Backends {
		fmt.Fprintf(&b, "        server %s max_fails=%d fail_timeout=%s; # %s\n",
			be.hostPort(), c.MaxFails, confDuration(c.FailTimeout), be.name())
	}
	fmt.Fprintf(&b, "    }\n\n")
	fmt.Fprintf(&b, "    server {\n")
	fmt.Fprintf(&b, "        listen %s;\n", net.JoinHostPort(c.ListenAddress, fmt.Sprint(c.ListenPort)))
	fmt.Fprintf(&b, "        proxy_pass %s;\n", UpstreamName)
	fmt.Fprintf(&b, "        # Give up on a dead apiserver quickly and try the next one.\n")
	fmt.Fprintf(&b, "        proxy_connect_timeout %s;\n", confDuration(c.ConnectTimeout))
	fmt.Fprintf(&b, "        proxy_next_upstream on;\n")
	fmt.Fprintf(&b, "        # Watches are long-lived and may stay idle for minutes.\n")
	fmt.Fprintf(&b, "        proxy_timeout %s;\n", confDuration(c.ProxyTimeout))
	fmt.Fprintf(&b, "    }\n")
	fmt.Fprintf(&b, "}\n")
	return b.Bytes(), nil
}

// Managed starts every file the renderers write: how haadm (and an
// operator) tells its own configuration from anyone else's.
const Managed = "# Managed by haadm"

// header is shared by both renderers so that an operator recognises a file
// haadm owns whichever proxy they chose.
func header(b *bytes.Buffer, c Config) {
	fmt.Fprintf(b, "%s: layer-4 load balancer for the Kubernetes API.\n", Managed)
	fmt.Fprintf(b, "# haadm rewrites this file; local changes will be lost.\n")
	fmt.Fprintf(b, "# listen %s -> %d apiserver(s)\n\n", net.JoinHostPort(c.ListenAddress, fmt.Sprint(c.ListenPort)), len(c.Backends))
}
