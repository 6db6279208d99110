package phases

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
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
func (LB) Uses() Uses { return UsesEndpoint }

const nginxConf = "/etc/nginx/nginx.conf"

func lbConfig(c *Cluster) lb.Config {
	var backends []lb.Backend
	for _, m := range c.ControlPlanes() {
		backends = append(backends, lb.Backend{Name: m.Name, Address: m.IP, Port: c.APIServerPort()})
	}
	if c.Opts.LBMode == lb.ModeNodeLocal {
		cfg := lb.NodeLocal(backends)
		cfg.ListenPort = c.Opts.LBPort
		return cfg
	}
	return lb.Config{ListenAddress: "0.0.0.0", ListenPort: c.Opts.LBPort, Backends: backends}
}

func (LB) Plan(ctx context.Context, c *Cluster) (*Work, error) {
	w := &Work{}
	nodes := c.LBNodes()
	if len(nodes) == 0 {
		// The operator's load balancer: nothing to write, only to see it answer.
		if ok, why, err := c.lbAnswers(ctx, c.First.Name); !ok {
			if err != nil {
				why = err.Error()
			}
			w.add(Step{What: "load balancer " + c.Opts.Endpoint + " answers /readyz", Details: []string{"now: " + why}, Do: func(ctx context.Context) error {
				return waitFor(ctx, c.Log, "lb", "", "load balancer "+c.Opts.Endpoint+" answers /readyz", 2*time.Minute,
					func(ctx context.Context) (bool, string, error) { return c.lbAnswers(ctx, c.First.Name) })
			}})
		}
		return w, nil
	}
	want, err := lb.RenderNginx(lbConfig(c))
	if err != nil {
		return nil, err
	}
	// Planned at once, applied one node at a time: in node-local mode a
	// broken config must not take every node's API access down at once.
	if err := w.planNodes(len(nodes), func(i int) (*Step, error) { return planNginx(ctx, c, nodes[i], want) }); err != nil {
		return nil, err
	}
	return w, nil
}

// Reads are the LB nodes' nginx configurations.
func (LB) Reads(c *Cluster) map[string][]string {
	out := map[string][]string{}
	for _, n := range c.LBNodes() {
		out[n] = []string{nginxConf}
	}
	return out
}

// nginxRunning is what preflight saw, or asks the node when preflight did
// not run.
func nginxRunning(ctx context.Context, c *Cluster, n string) bool {
	if f, ok := c.facts[n]; ok {
		return f.nginxActive
	}
	_, err := c.Host(n).Output(ctx, "systemctl is-active nginx")
	return err == nil
}

func planNginx(ctx context.Context, c *Cluster, n string, want []byte) (*Step, error) {
	h := c.Host(n)
	files, err := h.ReadFiles(ctx, []string{nginxConf})
	if err != nil {
		return nil, err
	}
	running := nginxRunning(ctx, c, n)
	cur, exists := files[nginxConf]
	have := cur.Data
	same := exists && string(have) == string(want)
	if same && running {
		return nil, nil
	}
	cmd, what := "systemctl reload nginx", "nginx reloaded"
	if !running {
		cmd, what = "systemctl enable nginx >/dev/null 2>&1; systemctl restart nginx", "nginx started"
	}
	var details []string
	if !same {
		details = append(details, nginxConf+"\n"+node.Diff(nginxConf, have, want, exists))
		what = nginxConf + ", " + what
	}
	details = append(details, cmd)
	return &Step{
		Node: n, What: what + ", listening on :" + strconv.Itoa(c.Opts.LBPort), Details: details,
		Do: func(ctx context.Context) error {
			if !same {
				if err := writeNginx(ctx, h, want); err != nil {
					return err
				}
			}
			// A reload keeps established connections (watches) alive.
			if _, err := h.Run(ctx, cmd); err != nil {
				return err
			}
			return waitFor(ctx, c.Log, "lb", n, "load balancer "+c.Opts.Endpoint+" answers /readyz", 2*time.Minute,
				func(ctx context.Context) (bool, string, error) { return c.lbAnswers(ctx, n) })
		},
	}, nil
}

// writeNginx replaces nginx.conf with want once nginx has accepted it
// from a staged copy: a file it refuses never replaces the working one.
func writeNginx(ctx context.Context, h node.Host, want []byte) error {
	staged := "/etc/nginx/.haadm-nginx.conf.new"
	if err := h.WriteFiles(ctx, []node.File{{Path: staged, Data: want, Mode: 0o644}}); err != nil {
		return err
	}
	if _, err := h.Run(ctx, "nginx -t -q -c "+staged+"; rc=$?; rm -f "+staged+"; exit $rc"); err != nil {
		return fmt.Errorf("nginx refused the rendered configuration: %w", err)
	}
	return h.WriteFiles(ctx, []node.File{{Path: nginxConf, Data: want, Mode: 0o644}})
}

// lbAnswers asks /readyz through the load balancer by its endpoint name,
// from node via, verifying the certificate: exactly what a kubelet or
// kubectl there will see.
func (c *Cluster) lbAnswers(ctx context.Context, via string) (bool, string, error) {
	ok, why, err := c.readyz(ctx, via, c.lbAddr(), c.EndpointHost)
	if err != nil && strings.Contains(err.Error(), "x509") {
		err = fmt.Errorf("%w (the apiserver certificates lack the endpoint name: run `haadm phase certs`)", err)
	}
	return ok, why, err
}
