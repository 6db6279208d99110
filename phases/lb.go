package phases

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/haadm/haadm/lb"
)

// LB configures the layer-4 load balancer in front of every apiserver:
// nginx's stream proxy on the node the operator chose, as the seed setup
// did. With --lb-mode none the operator runs it; haadm only checks it answers.
type LB struct{}

func (LB) Name() string { return "lb" }
func (LB) Description() string {
	return "nginx stream load balancer in front of every apiserver; wait until it answers"
}

const nginxConf = "/etc/nginx/nginx.conf"

func lbConfig(c *Cluster) lb.Config {
	var backends []lb.Backend
	for _, m := range c.Masters() {
		backends = append(backends, lb.Backend{Name: m.Name, Address: m.IP, Port: lb.APIServerPort})
	}
	return lb.Config{ListenAddress: "0.0.0.0", ListenPort: c.Opts.LBPort, Backends: backends}
}

func (LB) Check(ctx context.Context, c *Cluster) (bool, string, error) {
	if c.Opts.LBMode != "external" {
		ok, why, err := c.lbAnswers(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		return ok, why, nil
	}
	want, err := lb.RenderNginx(lbConfig(c))
	if err != nil {
		return false, "", err
	}
	same, err := c.fileIs(ctx, c.Opts.LBNode, nginxConf, want)
	if err != nil {
		return false, "", err
	}
	if !same {
		return false, c.Opts.LBNode + ": " + nginxConf + " differs", nil
	}
	if _, err := c.Host(c.Opts.LBNode).Output(ctx, "systemctl is-active nginx"); err != nil {
		return false, c.Opts.LBNode + ": nginx is not running", nil
	}
	return true, "", nil
}

func (LB) Apply(ctx context.Context, c *Cluster) error {
	if c.Opts.LBMode == "external" {
		if err := installNginx(ctx, c); err != nil {
			return err
		}
	}
	return c.wait(ctx, "lb", c.Opts.LBNode, "load balancer "+c.Opts.Endpoint+" answers /readyz", 2*time.Minute, c.lbAnswers)
}

func installNginx(ctx context.Context, c *Cluster) error {
	n := c.Opts.LBNode
	h := c.Host(n)
	want, err := lb.RenderNginx(lbConfig(c))
	if err != nil {
		return err
	}
	same, err := c.fileIs(ctx, n, nginxConf, want)
	if err != nil {
		return err
	}
	if !same {
		// nginx must accept the file before it replaces the working one.
		staged := "/etc/nginx/.haadm-nginx.conf.new"
		if err := h.WriteFile(ctx, staged, want, 0o644); err != nil {
			return err
		}
		if _, err := h.Run(ctx, "nginx -t -q -c "+staged+"; rc=$?; rm -f "+staged+"; exit $rc"); err != nil {
			return fmt.Errorf("node %s: nginx refused the rendered configuration: %w", n, err)
		}
		if _, err := c.ensureFile(ctx, "lb", n, nginxConf, want, 0o644); err != nil {
			return err
		}
	}
	cmd, what := "", ""
	if _, err := h.Output(ctx, "systemctl is-active nginx"); err != nil {
		cmd, what = "systemctl enable nginx >/dev/null 2>&1; systemctl restart nginx", "nginx started"
	} else if !same {
		// A reload keeps established connections (watches) alive.
		cmd, what = "systemctl reload nginx", "nginx reloaded"
	}
	if cmd == "" {
		return nil
	}
	t0 := time.Now()
	if _, err := h.Run(ctx, cmd); err != nil {
		return err
	}
	if !c.Opts.DryRun {
		c.Log.Step("lb", n, time.Since(t0), what+", listening on :"+strconv.Itoa(c.Opts.LBPort))
	}
	return nil
}

// lbAnswers asks /readyz through the load balancer by its endpoint name,
// from the LB node (or the first master), verifying the certificate: this is
// exactly what a kubelet or kubectl will see.
func (c *Cluster) lbAnswers(ctx context.Context) (bool, string, error) {
	via, addr := c.First.Name, c.Opts.Endpoint
	if c.Opts.LBMode == "external" {
		via = c.Opts.LBNode
		addr = net.JoinHostPort(c.Nodes[via].IP, strconv.Itoa(c.Opts.LBPort))
	}
	ok, why, err := c.readyz(ctx, via, addr, c.EndpointHost)
	if err != nil && strings.Contains(err.Error(), "x509") {
		err = fmt.Errorf("%w (the apiserver certificates lack the endpoint name: run `haadm phase certs`)", err)
	}
	return ok, why, err
}
