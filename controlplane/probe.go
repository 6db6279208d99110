package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// DialFunc opens a connection from somewhere that reaches addr (a node's
// side of an SSH connection, usually).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// ProbeOptions say how to ask an apiserver (or a load balancer in front of
// apiservers) whether it is ready.
type ProbeOptions struct {
	// Roots, when set, verify the serving certificate for ServerName: the
	// probe then also proves the certificate fits the name clients use.
	// Without it the certificate is taken as it is and returned, for a
	// caller that judges its SANs itself (a wrong certificate is often the
	// very thing to report).
	Roots *x509.CertPool
	// ServerName is the name clients use; empty means the host of addr.
	ServerName string
	// Version also asks /version.
	Version bool
}

// ProbeResult is what one probe found.
type ProbeResult struct {
	Ready   bool
	Version string
	// Cert is the serving certificate, even when /readyz failed.
	Cert *x509.Certificate
	// Err says why it is not ready: a connection or TLS error, or the
	// failed readyz checks.
	Err error
}

// maxBody bounds what is read: /readyz?verbose and /version are a few
// hundred bytes; anything longer is not an apiserver.
const maxBody = 16 << 10

// Probe GETs /readyz (and /version) of the apiserver at addr over dial.
// Both paths are readable anonymously on kubeadm clusters
// (system:public-info-viewer). ctx bounds the whole probe.
func Probe(ctx context.Context, dial DialFunc, addr string, o ProbeOptions) ProbeResult {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ProbeResult{Err: fmt.Errorf("address %q: %w", addr, err)}
	}
	name := o.ServerName
	if name == "" {
		name = host
	}
	tlsCfg := &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12}
	if o.Roots != nil {
		tlsCfg.RootCAs = o.Roots
	} else {
		tlsCfg.InsecureSkipVerify = true
	}
	tr := &http.Transport{
		DialContext:        func(ctx context.Context, network, _ string) (net.Conn, error) { return dial(ctx, network, addr) },
		TLSClientConfig:    tlsCfg,
		DisableCompression: true,
		// One connection serves both requests; nothing outlives the probe.
		MaxIdleConnsPerHost: 1,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	base := "https://" + net.JoinHostPort(name, port)
	var res ProbeResult
	code, body, cert, err := get(ctx, client, base+"/readyz")
	res.Cert = cert
	switch {
	case err != nil:
		res.Err = err
		return res
	case code == http.StatusOK:
		res.Ready = true
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		res.Err = fmt.Errorf("readyz: HTTP %d: anonymous access refused (--anonymous-auth=false?)", code)
	default:
		res.Err = fmt.Errorf("readyz: HTTP %d%s", code, failedChecks(body))
	}
	if o.Version {
		if code, body, _, err := get(ctx, client, base+"/version"); err == nil && code == http.StatusOK {
			var v struct {
				GitVersion string `json:"gitVersion"`
			}
			if json.Unmarshal(body, &v) == nil {
				res.Version = v.GitVersion
			}
		}
	}
	return res
}

func get(ctx context.Context, client *http.Client, target string) (code int, body []byte, cert *x509.Certificate, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		// url.Error repeats the method and URL, which callers show anyway.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		cert = resp.TLS.PeerCertificates[0]
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, body, cert, err
}

// failedChecks picks the "[-]etcd failed: ..." lines of a readyz answer,
// the only useful part of it.
func failedChecks(body []byte) string {
	var failed []string
	for _, line := range strings.Split(string(body), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "[-]") {
			failed = append(failed, strings.TrimPrefix(line, "[-]"))
		}
	}
	if len(failed) == 0 {
		if s := strings.TrimSpace(string(body)); s != "" && len(s) < 200 {
			return ": " + s
		}
		return ""
	}
	return ": " + strings.Join(failed, "; ")
}
