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
// did, or on 127.0.0.1 of every node (node-local: no single LB to lose).
// With --lb-mode none the operator runs it; haadm only checks it answers.
type LB struct{}

func (LB) Name() string { return "lb" }
func (LB) Description() string {
	return "nginx stream load balancer in front of every apiserver; wait until it answers"
}

const nginxConf = "/etc/nginx/nginx.conf"

func lbConfig(c *Cluster) lb.Config {
	var backends []lb.Backend
	for _, m := range c.ControlPlanes() {
		backends = append(backends, lb.Backend{Name: m.Name, Address: m.IP, Port: lb.APIServerPort})
	}
	if c.Opts.LBMode == "node-local" {
		cfg := lb.NodeLocal(backends)
		cfg.ListenPort = c.Opts.LBPort
		return cfg
	}
	return lb.Config{ListenAddress: "0.0.0.0", ListenPort: c.Opts.LBPort, Backends: backends}
}

func (LB) Check(ctx context.Context, c *Cluster) (bool, string, error) {
	want, err := lb.RenderNginx(lbConfig(c))
	if err != nil {
		return false, "", err
	}
	var todo []string
	for _, n := range c.LBNodes() {
		same, err := c.fileIs(ctx, n, nginxConf, want)
		if err != nil {
			return false, "", err
		}
		if !same {
			todo = append(todo, n+": "+nginxConf+" differs")
		} else if _, err := c.Host(n).Output(ctx, "systemctl is-active nginx"); err != nil {
			todo = append(todo, n+": nginx is not running")
		}
	}
	if len(c.LBNodes()) == 0 {
		ok, why, err := c.lbAnswers(ctx, c.First.Name)
		if err != nil {
			return false, err.Error(), nil
		}
		if !ok {
			return false, why, nil
		}
	}
	return len(todo) == 0, strings.Join(todo, ", "), nil
}

func (LB) Apply(ctx context.Context, c *Cluster) error {
	want, err := lb.RenderNginx(lbConfig(c))
	if err != nil {
		return err
	}
	nodes := c.LBNodes()
	if len(nodes) == 0 {
		return c.wait(ctx, "lb", "", "load balancer "+c.Opts.Endpoint+" answers /readyz", 2*time.Minute,
			func(ctx context.Context) (bool, string, error) { return c.lbAnswers(ctx, c.First.Name) })
	}
	// One node at a time: in node-local mode a broken config must not take
	// every node's API access down at once.
	for _, n := range nodes {
		if err := installNginx(ctx, c, n, want); err != nil {
			return err
		}
		if err := c.wait(ctx, "lb", n, "load balancer "+c.Opts.Endpoint+" answers /readyz", 2*time.Minute,
			func(ctx context.Context) (bool, string, error) { return c.lbAnswers(ctx, n) }); err != nil {
			return err
		}
	}
	return nil
}

func installNginx(ctx context.Context, c *Cluster, n string, want []byte) error {
	h := c.Host(n)
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
// from node via, verifying the certificate: exactly what a kubelet or
// kubectl there will see.
func (c *Cluster) lbAnswers(ctx context.Context, via string) (bool, string, error) {
	addr := c.Opts.Endpoint
	switch c.Opts.LBMode {
	case "external":
		addr = net.JoinHostPort(c.Nodes[c.Opts.LBNode].IP, strconv.Itoa(c.Opts.LBPort))
	case "node-local":
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Opts.LBPort))
	}
	ok, why, err := c.readyz(ctx, via, addr, c.EndpointHost)
	if err != nil && strings.Contains(err.Error(), "x509") {
		err = fmt.Errorf("%w (the apiserver certificates lack the endpoint name: run `haadm phase certs`)", err)
	}
	return ok, why, err
}
