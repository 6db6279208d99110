package phases

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

// lbPrograms are the programs a load-balancer node needs in this run.
func lbPrograms(c *Cluster) []string {
	progs := []string{c.Opts.engine().Service()}
	if c.Opts.LBMode == lb.ModeVIP {
		progs = append(progs, "keepalived")
	}
	return progs
}

// lbSoftwareScript prints the programs the node lacks, the package
// manager it has, which engines run on haadm's files there, and the
// configurations haadm would replace that are someone else's.
func lbSoftwareScript(c *Cluster) string {
	script := "for b in " + strings.Join(lbPrograms(c), " ") + "; do command -v $b >/dev/null 2>&1 || echo missing=$b; done; " +
		"for m in apt-get dnf yum; do if command -v $m >/dev/null 2>&1; then echo pm=$m; break; fi; done"
	ours := func(path string) string { return "head -n1 " + path + " 2>/dev/null | grep -q '^" + lb.Managed + "'" }
	for _, e := range lb.Engines() {
		script += "; if " + ours(e.ConfPath()) + "; then echo managed=" + e.Service() + "; fi"
	}
	// Debian's haproxy.cfg has no proxy section; one that has is in use.
	if e := c.Opts.engine(); e == lb.EngineHAProxy {
		script += "; if [ -f " + e.ConfPath() + " ] && ! " + ours(e.ConfPath()) + " && grep -qE '^(frontend|listen|backend)[[:space:]]' " + e.ConfPath() + "; then echo foreign=" + e.ConfPath() + "; fi"
	}
	// Debian's keepalived comes without a keepalived.conf.
	if c.Opts.LBMode == lb.ModeVIP {
		script += "; if [ -f " + lb.KeepalivedConf + " ] && ! " + ours(lb.KeepalivedConf) + "; then echo foreign=" + lb.KeepalivedConf + "; fi"
	}
	return script
}

// lbSoftware is what lbSoftwareScript found.
type lbSoftware struct {
	missing []string // programs
	pkgMgr  string
	managed []string // engines running on haadm's file
	foreign []string // files haadm would replace that are not its own
}

func parseLBSoftware(out string) lbSoftware {
	var s lbSoftware
	for _, f := range strings.Fields(out) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "missing":
			s.missing = append(s.missing, v)
		case "pm":
			s.pkgMgr = v
		case "managed":
			s.managed = append(s.managed, v)
		case "foreign":
			s.foreign = append(s.foreign, v)
		}
	}
	return s
}

// packagesFor names the packages that provide the programs, in the
// package manager's own names.
func packagesFor(programs []string, pm string) []string {
	var out []string
	for _, p := range programs {
		switch {
		case p == "nginx" && pm == "apt-get":
			out = append(out, lb.EngineNginx.Packages()...)
		case p == "nginx":
			// Fedora and RHEL ship the stream module apart too.
			out = append(out, "nginx", "nginx-mod-stream")
		default:
			out = append(out, p)
		}
	}
	return out
}

func installCommand(pm string, pkgs []string) string {
	list := strings.Join(pkgs, " ")
	if pm == "apt-get" {
		// Debian starts what it installs: nginx on :80 with its default
		// site, on every node in node-local mode. policy-rc.d keeps the
		// services down (the lb phase starts them on haadm's files), unless
		// the node has a policy of its own. Stale package lists are the
		// usual reason an install fails.
		return "p=/usr/sbin/policy-rc.d; made=; if [ ! -e $p ]; then printf '#!/bin/sh\\nexit 101\\n' > $p && chmod 755 $p && made=1; fi; " +
			"export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q --no-install-recommends " + list +
			" || { apt-get update -q && apt-get install -y -q --no-install-recommends " + list + "; }; rc=$?; if [ -n \"$made\" ]; then rm -f $p; fi; exit $rc"
	}
	return pm + " install -y " + list
}

// judgeLBSoftware: a missing program is installed by preflight once every
// check has passed, unless --no-install says to refuse.
func (c *Cluster) judgeLBSoftware(name string, f nodeFacts) []string {
	var problems []string
	for _, path := range f.foreign {
		problems = append(problems, fmt.Sprintf("node %s: %s is not haadm's and haadm would replace it (with whatever it serves): move that configuration off the masters, or choose another --lb-mode or --lb-engine", name, path))
	}
	if len(f.missing) == 0 {
		return problems
	}
	what := strings.Join(f.missing, " and ")
	if f.pkgMgr == "" {
		return append(problems, fmt.Sprintf("node %s: %s not installed, and it has no apt-get, dnf or yum for haadm to install it: install %s yourself", name, what, strings.Join(packagesFor(f.missing, "apt-get"), " ")))
	}
	pkgs := packagesFor(f.missing, f.pkgMgr)
	if c.Opts.NoInstall {
		return append(problems, fmt.Sprintf("node %s: %s not installed (--no-install): run `%s install -y %s` there, or drop --no-install to let haadm do it", name, what, f.pkgMgr, strings.Join(pkgs, " ")))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.toInstall == nil {
		c.toInstall = map[string][]string{}
	}
	c.toInstall[name] = pkgs
	return problems
}

// lbConfigCheckScript has the engine judge the configuration haadm will
// write, from a temporary file: a missing stream module shows now, not
// after etcd has grown (`nginx -V` says --with-stream=dynamic on Debian
// with or without the module). The file is gone when the command ends.
func lbConfigCheckScript(c *Cluster) (string, error) {
	if len(c.LBNodes()) == 0 {
		return "", nil
	}
	e := c.Opts.engine()
	conf, err := e.Render(lbConfig(c))
	if err != nil {
		return "", fmt.Errorf("render the %s configuration: %v", e, err)
	}
	return "if t=$(mktemp /tmp/haadm-lb-XXXXXX.conf); then cat > \"$t\" <<'HAADM_LB_EOF'\n" + string(conf) +
		"HAADM_LB_EOF\nif out=$(" + e.CheckCommand("\"$t\"") + " 2>&1); then :; else echo \"lb-refused $out\"; fi; rm -f \"$t\"; else echo 'lb-refused cannot make a temporary file in /tmp'; fi", nil
}

// lbRefused turns the check's output into the problem to report.
func lbRefused(c *Cluster, out string) string {
	j := strings.Index(out, "lb-refused ")
	if j < 0 {
		return ""
	}
	why := strings.TrimSpace(out[j+len("lb-refused "):])
	e := c.Opts.engine()
	hint := ""
	if e == lb.EngineNginx {
		hint = " (is the stream module installed? Debian/Ubuntu: apt-get install libnginx-mod-stream)"
	}
	return fmt.Sprintf("%s refuses the configuration haadm would write%s: %s", e, hint, why)
}

// installMissing installs, once every check has passed, the load-balancer
// packages preflight found missing, and has the engine judge haadm's
// configuration right away: like the images preflight pulls, before etcd
// changes.
func (c *Cluster) installMissing(ctx context.Context) []string {
	check, err := lbConfigCheckScript(c)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for _, n := range keys(c.toInstall) {
		pkgs, pm := c.toInstall[n], c.facts[n].pkgMgr
		cmd := installCommand(pm, pkgs)
		if c.Opts.DryRun {
			c.Log.Step("preflight", n, 0, "would install "+strings.Join(pkgs, " ")+": "+cmd)
			continue
		}
		t0 := time.Now()
		c.Log.Start("preflight", n, "install "+strings.Join(pkgs, " "))
		if _, err := c.Host(n).Run(ctx, cmd); err != nil {
			problems = append(problems, fmt.Sprintf("node %s: installing %s failed, perhaps half way (%v): install it yourself, or run again with --no-install to see the command", n, strings.Join(pkgs, " "), err))
			continue
		}
		out, err := c.Host(n).Output(ctx, lbSoftwareScript(c)+"\n"+check)
		if err != nil {
			problems = append(problems, fmt.Sprintf("node %s: %v", n, err))
			continue
		}
		if missing := parseLBSoftware(out).missing; len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("node %s: still no %s after installing %s: install it yourself", n, strings.Join(missing, ", "), strings.Join(pkgs, " ")))
			continue
		}
		if why := lbRefused(c, out); why != "" {
			problems = append(problems, fmt.Sprintf("node %s: %s", n, why))
			continue
		}
		c.Log.Step("preflight", n, time.Since(t0), "installed "+strings.Join(pkgs, " "))
	}
	return problems
}

// vipSite is where a master holds its address on the virtual address's
// subnet.
type vipSite struct {
	iface     string
	prefixLen int
}

// vipSiteOf finds, in `ip -o addr show`, the device and prefix of the
// node's own address, and checks the virtual address is on that subnet.
func vipSiteOf(addrs, ip, vip string) (vipSite, error) {
	for _, line := range strings.Split(addrs, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[2] != "inet" || !strings.HasPrefix(f[3], ip+"/") {
			continue
		}
		_, subnet, err := net.ParseCIDR(f[3])
		if err != nil {
			return vipSite{}, err
		}
		ones, _ := subnet.Mask.Size()
		if !subnet.Contains(net.ParseIP(vip)) {
			return vipSite{}, fmt.Errorf("--vip %s is not on its subnet %s (%s): choose a free address there", vip, subnet, f[1])
		}
		return vipSite{iface: strings.TrimSuffix(f[1], ":"), prefixLen: ones}, nil
	}
	return vipSite{}, fmt.Errorf("its address %s is on no interface (`ip -o addr show`)", ip)
}

// holdsAddr reports whether `ip -o addr show` output has the address.
func holdsAddr(addrs, ip string) bool {
	for _, line := range strings.Split(addrs, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && strings.HasPrefix(f[3], ip+"/") {
			return true
		}
	}
	return false
}

// checkVIP: the virtual address is on every master's subnet, and no
// machine holds it but a master where keepalived runs (a re-run), or
// nothing answers for it on the subnet.
func (c *Cluster) checkVIP(ctx context.Context) []string {
	if c.Opts.LBMode != lb.ModeVIP || !c.HasEndpoint() {
		return nil
	}
	vip := c.Opts.VIP
	var problems []string
	ours := false
	for _, n := range c.LBNodes() {
		f, ok := c.facts[n]
		if !ok {
			continue
		}
		if _, err := vipSiteOf(f.addrs, c.Nodes[n].IP, vip); err != nil {
			problems = append(problems, fmt.Sprintf("node %s: %v", n, err))
		}
		if holdsAddr(f.addrs, vip) {
			if !f.keepalivedActive {
				problems = append(problems, fmt.Sprintf("node %s holds --vip %s, but not through keepalived: choose a free address", n, vip))
			}
			ours = true
		}
	}
	for _, n := range keys(c.facts) {
		if !slices.Contains(c.LBNodes(), n) && holdsAddr(c.facts[n].addrs, vip) {
			problems = append(problems, fmt.Sprintf("node %s, not a master, holds --vip %s: choose a free address", n, vip))
		}
	}
	if ours || len(problems) > 0 {
		return problems
	}
	// Any machine on the subnet answers ARP for an address it holds,
	// whether or not a port is open: ask the kernel after trying one.
	q := node.ShellQuote(vip)
	out, err := c.Host(c.First.Name).Output(ctx, "timeout 2 bash -c 'exec 3<>/dev/tcp/'"+q+"'/22' >/dev/null 2>&1; ip neigh show "+q)
	if err != nil {
		return []string{fmt.Sprintf("node %s: checking that --vip %s is free: %v", c.First.Name, vip, err)}
	}
	// An entry another holder left STALE is being probed again (DELAY,
	// PROBE) and still shows its lladdr: only an answer now counts.
	if strings.Contains(out, "lladdr") && (strings.Contains(out, "REACHABLE") || strings.Contains(out, "PERMANENT")) {
		return []string{fmt.Sprintf("--vip %s is in use: a machine answers for it on the subnet (%s, seen from %s): choose a free address", vip, strings.TrimSpace(out), c.First.Name)}
	}
	return nil
}
