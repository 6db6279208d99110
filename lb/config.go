package lb

import "time"

// Backend is one kube-apiserver behind the load balancer.
type Backend struct {
	// Name identifies the backend in comments and as the haproxy server name;
	// empty means the address.
	Name string
	// Address is an IP address or a host name.
	Address string
	Port    int
}

// Config describes one load balancer listener in front of the apiservers.
// Zero values of the optional fields take the defaults documented on them.
type Config struct {
	// ListenAddress is an IP literal: "0.0.0.0" on a dedicated load balancer,
	// "127.0.0.1" for the node-local mode.
	ListenAddress string
	ListenPort    int
	Backends      []Backend

	// PIDFile defaults to /run/nginx.pid or /run/haproxy.pid, the paths
	// Debian's systemd units expect.
	PIDFile string
	// ErrorLog (nginx only) defaults to /var/log/nginx/error.log.
	ErrorLog string
	// NginxStreamModule (nginx only) is the path of ngx_stream_module.so to
	// load_module explicitly. Leave it empty with Debian's
	// libnginx-mod-stream, which already loads the module through
	// /etc/nginx/modules-enabled: loading it twice is a fatal error.
	NginxStreamModule string

	// ConnectTimeout defaults to 1s so that a dead apiserver is skipped
	// quickly in favour of the next one (kubespray's node-local nginx uses
	// 1s too): on the masters' network a live one answers in milliseconds.
	ConnectTimeout time.Duration
	// ProxyTimeout is the idle timeout of a proxied connection; it defaults to
	// 10m because watches stay open, idle, for minutes.
	ProxyTimeout time.Duration

	// MaxFails and FailTimeout (nginx only, passive health checks) default to
	// 2 failures within 10s, after which the backend is skipped for 10s.
	MaxFails    int
	FailTimeout time.Duration

	// CheckInterval, Rise and Fall (haproxy only, active GET /readyz checks)
	// default to every 1s, 2 successes to come back, 2 failures (a quarter
	// interval apart) to go down: out within 1.5s.
	CheckInterval time.Duration
	Rise          int
	Fall          int
}

// Defaults and well-known ports.
const (
	APIServerPort         = 6443
	DefaultNodeLocalPort  = 6444
	DefaultConnectTimeout = time.Second
	DefaultProxyTimeout   = 10 * time.Minute
	DefaultMaxFails       = 2
	DefaultFailTimeout    = 10 * time.Second
	DefaultCheckInterval  = time.Second
	DefaultRise           = 2
	DefaultFall           = 2

	defaultNginxPIDFile   = "/run/nginx.pid"
	defaultNginxErrorLog  = "/var/log/nginx/error.log"
	defaultHAProxyPIDFile = "/run/haproxy.pid"
)

// withDefaults returns a copy of c with every unset optional field filled.
func (c Config) withDefaults(pidFile string) Config {
	if c.PIDFile == "" {
		c.PIDFile = pidFile
	}
	if c.ErrorLog == "" {
		c.ErrorLog = defaultNginxErrorLog
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ProxyTimeout == 0 {
		c.ProxyTimeout = DefaultProxyTimeout
	}
	if c.MaxFails == 0 {
		c.MaxFails = DefaultMaxFails
	}
	if c.FailTimeout == 0 {
		c.FailTimeout = DefaultFailTimeout
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.Rise == 0 {
		c.Rise = DefaultRise
	}
	if c.Fall == 0 {
		c.Fall = DefaultFall
	}
	return c
}
