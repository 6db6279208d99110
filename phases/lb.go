package phases

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

// LB configures the layer-4 load balancer in front of every apiserver:
// nginx's stream proxy (or haproxy) on the node the operator chose, as the
// seed setup did, on 127.0.0.1 of every node (node-local: no single LB to
// lose), or on every master behind keepalived's virtual address (vip).
// With --lb-mode none the operator runs it; haadm only checks it answers.
type LB struct{}

func (LB) Name() string { return "lb" }
func (LB) Description() string {
	return "layer-4 load balancer (nginx or haproxy; keepalived's virtual address with --lb-mode vip) in front of every apiserver; wait until it answers"
}
func (LB) Uses() Uses { return UsesEndpoint }

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
	// In the vip mode every master listens on all its addresses, so the
	// virtual one is served wherever keepalived puts it.
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
	e := c.Opts.engine()
	want, err := e.Render(lbConfig(c))
	if err != nil {
		return nil, err
	}
	// Planned at once, applied one node at a time: in node-local mode a
	// broken config must not take every node's API access down at once.
	if err := w.planNodes(len(nodes), func(i int) (*Step, error) { return planProxy(ctx, c, nodes[i], e, want) }); err != nil {
		return nil, err
	}
	if c.Opts.LBMode == lb.ModeVIP {
		// The address comes last, once every master's proxy answers.
		before := len(w.Steps)
		if err := w.planNodes(len(nodes), func(i int) (*Step, error) { return planKeepalived(ctx, c, nodes, i) }); err != nil {
			return nil, err
		}
		// Each master's wait passes on whichever holds the address itself:
		// with VRRP blocked between them every one does. The last step
		// waits for one holder.
		if len(w.Steps) > before {
			last := &w.Steps[len(w.Steps)-1]
			do := last.Do
			last.Do = func(ctx context.Context) error {
				if err := do(ctx); err != nil {
					return err
				}
				return waitFor(ctx, c.Log, "lb", "", "one master holds "+c.Opts.VIP, 30*time.Second,
					func(ctx context.Context) (bool, string, error) { return vipHolders(ctx, c, nodes) })
			}
		}
	}
	return w, nil
}

// vipHolders is done when exactly one of nodes holds the virtual address.
func vipHolders(ctx context.Context, c *Cluster, nodes []string) (bool, string, error) {
	var holders []string
	for _, n := range nodes {
		out, err := c.Host(n).Output(ctx, "ip -o addr show")
		if err != nil {
			return false, "", err
		}
		if holdsAddr(out, c.Opts.VIP) {
			holders = append(holders, n)
		}
	}
	switch len(holders) {
	case 1:
		return true, holders[0] + " holds it", nil
	case 0:
		return false, "no master holds it", nil
	}
	return false, "held by " + strings.Join(holders, ", ") + " at once: the masters do not hear each other's VRRP adverts (IP protocol 112 between them must pass the firewall)", nil
}

// Reads are the LB nodes' proxy configurations (every engine's: a node
// may switch), and keepalived's in the vip mode.
func (LB) Reads(c *Cluster) map[string][]string {
	out := map[string][]string{}
	for _, n := range c.LBNodes() {
		for _, e := range lb.Engines() {
			out[n] = append(out[n], e.ConfPath())
		}
		if c.Opts.LBMode == lb.ModeVIP {
			out[n] = append(out[n], lb.KeepalivedConf, lb.KeepalivedCheck)
		}
	}
	return out
}

// serviceActive is what preflight saw, or asks the node when preflight
// did not run.
func serviceActive(ctx context.Context, c *Cluster, n, service string) bool {
	if f, ok := c.facts[n]; ok {
		switch service {
		case c.Opts.engine().Service():
			return f.proxyActive
		case "keepalived":
			return f.keepalivedActive
		}
	}
	_, err := c.Host(n).Output(ctx, "systemctl is-active "+service)
	return err == nil
}

func planProxy(ctx context.Context, c *Cluster, n string, e lb.Engine, want []byte) (*Step, error) {
	h := c.Host(n)
	var paths []string
	for _, o := range lb.Engines() {
		paths = append(paths, o.ConfPath())
	}
	files, err := h.ReadFiles(ctx, paths)
	if err != nil {
		return nil, err
	}
	// haadm's own other engine (the operator switched) must free the port;
	// once disabled and stopped it is left alone ("disabled" is not
	// "enabled"), or every later promote would restart the proxy.
	var stop []string
	for _, o := range lb.Engines() {
		if f, ok := files[o.ConfPath()]; o != e && ok && strings.HasPrefix(string(f.Data), lb.Managed) {
			if state, _ := h.Output(ctx, "systemctl is-active "+o.Service()+"; systemctl is-enabled "+o.Service()+"; true"); strings.HasPrefix(state, "active\n") || strings.Contains(state, "\nenabled") {
				stop = append(stop, "systemctl disable --now "+o.Service())
			}
		}
	}
	running := serviceActive(ctx, c, n, e.Service())
	cur, exists := files[e.ConfPath()]
	have := cur.Data
	same := exists && string(have) == string(want)
	if same && running && len(stop) == 0 {
		return nil, nil
	}
	cmd, what := "systemctl reload "+e.Service(), string(e)+" reloaded"
	if !running || len(stop) > 0 {
		cmd, what = "systemctl enable "+e.Service()+" >/dev/null 2>&1; systemctl restart "+e.Service(), string(e)+" started"
	}
	if len(stop) > 0 {
		cmd = strings.Join(stop, "; ") + "; " + cmd
		what += " in place of haadm's other proxy"
	}
	var details []string
	if !same {
		details = append(details, e.ConfPath()+"\n"+node.Diff(e.ConfPath(), have, want, exists))
		what = e.ConfPath() + ", " + what
	}
	details = append(details, cmd)
	addr := c.proxyAddrOn(n)
	return &Step{
		Node: n, What: what + ", listening on :" + strconv.Itoa(c.Opts.LBPort), Details: details,
		Do: func(ctx context.Context) error {
			if !same {
				if err := writeProxy(ctx, h, e, want); err != nil {
					return err
				}
			}
			// A reload keeps established connections (watches) alive.
			if _, err := h.Run(ctx, cmd); err != nil {
				return err
			}
			return waitFor(ctx, c.Log, "lb", n, "load balancer "+addr+" answers /readyz", 2*time.Minute,
				func(ctx context.Context) (bool, string, error) { return c.answersAt(ctx, n, addr) })
		},
	}, nil
}

// planKeepalived gives master nodes[i] its share of the virtual address.
// The first master has the highest priority, so it takes the address
// first; nopreempt keeps it wherever it is afterwards.
func planKeepalived(ctx context.Context, c *Cluster, nodes []string, i int) (*Step, error) {
	n := nodes[i]
	h := c.Host(n)
	addrs := c.facts[n].addrs
	if addrs == "" {
		var err error
		if addrs, err = h.Output(ctx, "ip -o addr show"); err != nil {
			return nil, err
		}
	}
	site, err := vipSiteOf(addrs, c.Nodes[n].IP, c.Opts.VIP)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n, err)
	}
	var peers []string
	for _, m := range nodes {
		if m != n {
			peers = append(peers, c.Nodes[m].IP)
		}
	}
	conf, err := lb.RenderKeepalived(lb.VRRP{Node: n, VIP: c.Opts.VIP, PrefixLen: site.prefixLen, Interface: site.iface,
		SourceIP: c.Nodes[n].IP, Peers: peers, Priority: 150 - i, RouterID: lb.RouterIDFor(c.Opts.VIP), Engine: c.Opts.engine()})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n, err)
	}
	check := lb.RenderKeepalivedCheck(c.Opts.engine())
	files, err := h.ReadFiles(ctx, []string{lb.KeepalivedConf, lb.KeepalivedCheck})
	if err != nil {
		return nil, err
	}
	cur, exists := files[lb.KeepalivedConf]
	same := exists && string(cur.Data) == string(conf) && string(files[lb.KeepalivedCheck].Data) == string(check)
	running := serviceActive(ctx, c, n, "keepalived")
	if same && running {
		return nil, nil
	}
	cmd, what := "systemctl reload keepalived", "keepalived reloaded"
	if !running {
		cmd, what = "systemctl enable keepalived >/dev/null 2>&1; systemctl restart keepalived", "keepalived started"
	}
	var details []string
	if !same {
		details = append(details, lb.KeepalivedConf+"\n"+node.Diff(lb.KeepalivedConf, cur.Data, conf, exists))
		what = lb.KeepalivedConf + ", " + what
	}
	details = append(details, cmd)
	return &Step{
		Node: n, What: what + ", virtual address " + c.Opts.VIP + " on " + site.iface, Details: details,
		Do: func(ctx context.Context) error {
			if !same {
				if err := writeKeepalived(ctx, h, conf, check); err != nil {
					return err
				}
			}
			if _, err := h.Run(ctx, cmd); err != nil {
				return err
			}
			return waitFor(ctx, c.Log, "lb", n, "virtual address "+c.lbAddr()+" answers /readyz", 2*time.Minute,
				func(ctx context.Context) (bool, string, error) { return c.lbAnswers(ctx, n) })
		},
	}, nil
}

// writeKeepalived installs the check script, then the configuration once
// keepalived has accepted it from a staged copy.
func writeKeepalived(ctx context.Context, h node.Host, conf, check []byte) error {
	staged := "/etc/keepalived/.haadm-keepalived.conf.new"
	if err := h.WriteFiles(ctx, []node.File{{Path: lb.KeepalivedCheck, Data: check, Mode: 0o700}, {Path: staged, Data: conf, Mode: 0o644}}); err != nil {
		return err
	}
	if _, err := h.Run(ctx, "keepalived --config-test -f "+staged+" >/dev/null; rc=$?; rm -f "+staged+"; exit $rc"); err != nil {
		return fmt.Errorf("keepalived refused the rendered configuration: %w", err)
	}
	return h.WriteFiles(ctx, []node.File{{Path: lb.KeepalivedConf, Data: conf, Mode: 0o644}})
}

// writeProxy replaces the engine's configuration with want once the engine
// has accepted it from a staged copy: a file it refuses never replaces the
// working one.
func writeProxy(ctx context.Context, h node.Host, e lb.Engine, want []byte) error {
	staged := path.Join(path.Dir(e.ConfPath()), ".haadm-"+path.Base(e.ConfPath())+".new")
	if err := h.WriteFiles(ctx, []node.File{{Path: staged, Data: want, Mode: 0o644}}); err != nil {
		return err
	}
	if _, err := h.Run(ctx, e.CheckCommand(staged)+"; rc=$?; rm -f "+staged+"; exit $rc"); err != nil {
		return fmt.Errorf("%s refused the rendered configuration: %w", e, err)
	}
	return h.WriteFiles(ctx, []node.File{{Path: e.ConfPath(), Data: want, Mode: 0o644}})
}

// lbAnswers asks /readyz through the load balancer by its endpoint name,
// from node via, verifying the certificate: exactly what a kubelet or
// kubectl there will see.
func (c *Cluster) lbAnswers(ctx context.Context, via string) (bool, string, error) {
	return c.answersAt(ctx, via, c.lbAddr())
}

// answersAt is lbAnswers at addr, a load balancer's own listener.
func (c *Cluster) answersAt(ctx context.Context, via, addr string) (bool, string, error) {
	ok, why, err := c.readyz(ctx, via, addr, c.EndpointHost)
	if err != nil && strings.Contains(err.Error(), "x509") {
		err = fmt.Errorf("%w (the apiserver certificates lack the endpoint name: run `haadm phase certs`)", err)
	}
	return ok, why, err
}
