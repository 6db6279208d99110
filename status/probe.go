package status

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

// probeResult is what one HTTPS probe of an apiserver (directly or through
// a load balancer) found.
type probeResult struct {
	ready   bool
	version string
	// cert is the serving certificate, even when /readyz failed: the TLS
	// handshake succeeded, and a wrong certificate is often why.
	cert *x509.Certificate
	err  error
}

// maxBody bounds what is read of a response: /readyz?verbose and /version
// are a few hundred bytes, anything longer is not an apiserver.
const maxBody = 16 << 10

// probe GETs https://hostport/readyz, and /version when withVersion, over a
// connection opened from the node called via. The certificate is not
// verified: readiness is the question, and the certificate's SANs are
// checked separately against what clients use, which says more than a
// handshake failure would. Both paths are readable anonymously on kubeadm
// clusters (system:public-info-viewer).
func (in *Inputs) probe(ctx context.Context, via, hostport string, withVersion bool) probeResult {
	ctx, cancel := context.WithTimeout(ctx, in.timeout())
	defer cancel()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return in.dial(ctx, via, network, addr)
		},
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true},
		DisableCompression: true,
		// One connection serves both requests; nothing outlives the probe.
		MaxIdleConnsPerHost: 1,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	var res probeResult
	code, body, cert, err := get(ctx, client, "https://"+hostport+"/readyz")
	res.cert = cert
	switch {
	case err != nil:
		// node's dial errors start with "node VIA:", which the report
		// shows in its own column.
		res.err = errors.New(strings.TrimPrefix(err.Error(), "node "+via+": "))
		return res
	case code == http.StatusOK:
		res.ready = true
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		res.err = fmt.Errorf("readyz: HTTP %d: anonymous access refused (--anonymous-auth=false?)", code)
	default:
		res.err = fmt.Errorf("readyz: HTTP %d%s", code, failedChecks(body))
	}
	if withVersion {
		if code, body, _, err := get(ctx, client, "https://"+hostport+"/version"); err == nil && code == http.StatusOK {
			var v struct {
				GitVersion string `json:"gitVersion"`
			}
			if json.Unmarshal(body, &v) == nil {
				res.version = v.GitVersion
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
		// url.Error repeats the method and URL, which the report already
		// shows next to the error.
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
	if err != nil {
		return resp.StatusCode, nil, cert, err
	}
	return resp.StatusCode, body, cert, nil
}

// failedChecks picks the "[-]etcd failed: ..." lines of a readyz answer, the
// only useful part of it.
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
