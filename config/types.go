// Package config is haadm's configuration file: the flags of promote and its
// phases written down once, so a run can be repeated and reviewed. The
// format is versioned like kubeadm's, by apiVersion and kind, so a later
// version can be told apart from this one instead of misread.
package config

import (
	"strings"
	"time"
)

const (
	// APIVersion is the only version of the format there is.
	APIVersion = "haadm.io/v1alpha1"
	// Kind is the only kind of file there is.
	Kind = "PromoteConfiguration"
)

// PromoteConfiguration is what `haadm promote -f FILE` reads: every field
// mirrors a flag, and an empty field leaves the flag's default alone.
type PromoteConfiguration struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Nodes is --nodes.
	Nodes []string `json:"nodes"`
	// FirstMaster is --first-master.
	FirstMaster  string       `json:"firstMaster"`
	LoadBalancer LoadBalancer `json:"loadBalancer"`
	// CertSANs is --cert-sans.
	CertSANs []string `json:"certSANs"`
	// EtcHosts is --etc-hosts.
	EtcHosts string `json:"etcHosts"`
	Backup   Backup `json:"backup"`
	// RemoveStaleLearners is --remove-stale-learners.
	RemoveStaleLearners bool `json:"removeStaleLearners"`
	SSH                 SSH  `json:"ssh"`
	// Kubeconfig is --kubeconfig.
	Kubeconfig string `json:"kubeconfig"`
	// Timeout is --timeout, such as "45m". It is a string, not a
	// time.Duration with its own decoding, so that a bad one is listed
	// with the other problems by its field path.
	Timeout string `json:"timeout"`
}

// LoadBalancer holds the --lb-* flags, --vip, --endpoint and --no-install.
type LoadBalancer struct {
	Mode      string `json:"mode"`
	Engine    string `json:"engine"`
	Node      string `json:"node"`
	Port      int    `json:"port"`
	VIP       string `json:"vip"`
	Endpoint  string `json:"endpoint"`
	NoInstall bool   `json:"noInstall"`
}

// Backup holds --backup-dir and --keep-backups.
type Backup struct {
	Dir  string `json:"dir"`
	Keep int    `json:"keep"`
}

// SSH holds the --ssh-* flags and --insecure-ignore-host-key, and what no
// flag can say: how to reach one node differently from the others.
type SSH struct {
	ConfigFile            string    `json:"configFile"`
	User                  string    `json:"user"`
	IdentityFile          string    `json:"identityFile"`
	ProxyJump             string    `json:"proxyJump"`
	InsecureIgnoreHostKey bool      `json:"insecureIgnoreHostKey"`
	Nodes                 []SSHNode `json:"nodes"`
}

// SSHNode overrides the SSH settings and the ssh config for the node Name,
// which can be any node haadm reaches, the first master included.
type SSHNode struct {
	Name         string `json:"name"`
	HostName     string `json:"hostName"`
	Port         int    `json:"port"`
	User         string `json:"user"`
	IdentityFile string `json:"identityFile"`
	ProxyJump    string `json:"proxyJump"`
}

// FormatDuration writes d as --timeout takes it and people write it: "45m"
// rather than time's "45m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// TimeoutDuration is Timeout parsed; 0 when it is empty. Decode has
// checked that it parses.
func (c *PromoteConfiguration) TimeoutDuration() time.Duration {
	d, _ := time.ParseDuration(c.Timeout)
	return d
}
