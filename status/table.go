package status

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// renderTable writes the report for people: the verdict and its reasons
// first, because that is what is read, then one table per component.
func renderTable(w io.Writer, r *Report) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "VERDICT: %s\n", r.Verdict)
	for _, why := range r.Reasons {
		fmt.Fprintf(&b, "  - %s\n", oneLine(why))
	}
	switch {
	case r.API.KubeadmConfigError != "":
		fmt.Fprintf(&b, "ENDPOINT: unknown (kubeadm-config unreadable)\n")
	case r.Endpoint != "":
		fmt.Fprintf(&b, "ENDPOINT: %s (clients use %s)\n", r.Endpoint, dash(r.Server))
	default:
		fmt.Fprintf(&b, "ENDPOINT: none (clients use %s, the first master %s)\n", dash(r.Server), dash(r.FirstMaster))
	}
	if r.API.Reachable {
		fmt.Fprintf(&b, "API: reachable\n")
	} else {
		fmt.Fprintf(&b, "API: unreachable: %s\n", oneLine(r.API.Error))
	}
	if l := r.Lock; l != nil {
		fmt.Fprintf(&b, "LOCK: %s\n", lockLine(l))
	}
	if len(r.Unreachable) > 0 {
		section(&b, "UNREACHABLE NODES", []string{"NODE", "ERROR"}, func(row func(...string)) {
			for _, u := range r.Unreachable {
				row(u.Node, u.Error)
			}
		})
	}
	etcdTable(&b, r.Etcd)
	apiserverTable(&b, r.APIServers)
	kubeconfigTable(&b, r.Kubeconfigs)
	configMapTable(&b, r.ConfigMaps)
	leaseTable(&b, r.Leases)
	nodeTable(&b, r.Nodes)
	lbTable(&b, r.LoadBalancers)
	fmt.Fprintf(&b, "\nCollected in %dms, started %s.\n", r.Timing.WallMs, dash(r.Timing.Started))
	_, err := w.Write(b.Bytes())
	return err
}

func etcdTable(b *bytes.Buffer, e Etcd) {
	if e.Error != "" {
		fmt.Fprintf(b, "\nETCD\nerror: %s\n", oneLine(e.Error))
		return
	}
	section(b, "ETCD", []string{"NAME", "ID", "ROLE", "STATUS", "LEADER", "RAFT TERM", "RAFT INDEX", "DB SIZE", "VERSION", "PEER URL", "CLIENT URL", "ERROR"},
		func(row func(...string)) {
			for _, m := range e.Members {
				role, state := "voter", "healthy"
				if m.Learner {
					role = "learner"
				}
				switch {
				case !m.Started:
					state = "not started"
				case !m.Healthy:
					state = "unhealthy"
				}
				row(m.Name, m.ID, role, state, yesNo(m.Leader), num(m.RaftTerm), num(m.RaftIndex),
					size(m.DBSize), m.Version, strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","), m.Error)
			}
		})
}

func apiserverTable(b *bytes.Buffer, rows []APIServer) {
	section(b, "APISERVERS", []string{"NODE", "ADDRESS", "READY", "VERSION", "CERT EXPIRES", "SANS MISSING", "VIA", "ERROR"},
		func(row func(...string)) {
			for _, a := range rows {
				row(a.Node, a.Address, yesNo(a.Ready), a.Version, a.CertExpires, strings.Join(a.SANsMissing, ","), a.Via, a.Error)
			}
		})
}

func kubeconfigTable(b *bytes.Buffer, rows []Kubeconfig) {
	section(b, "KUBECONFIGS", []string{"NODE", "FILE", "SERVER", "TARGET", "OK", "WANT", "ERROR"},
		func(row func(...string)) {
			for _, k := range rows {
				want := ""
				if !k.OK {
					want = strings.Join(append([]string{k.Want}, k.Alternatives...), " or ")
				}
				row(k.Node, k.File, k.Server, k.Target, yesNo(k.OK), want, k.Error)
			}
		})
}

func configMapTable(b *bytes.Buffer, rows []ConfigMap) {
	section(b, "CONFIGMAPS", []string{"NAME", "KEY", "SERVER", "TARGET", "OK", "SIGNED", "WANT", "ERROR"},
		func(row func(...string)) {
			for _, c := range rows {
				signed, want := "", ""
				if c.Signed != nil {
					signed = yesNo(*c.Signed)
				}
				if !c.OK {
					want = c.Want
				}
				server := c.Server
				if c.Absent {
					server = "(not present: no kube-proxy)"
				}
				row(c.Name, c.Key, server, c.Target, yesNo(c.OK), signed, want, c.Error)
			}
		})
}

func leaseTable(b *bytes.Buffer, rows []Lease) {
	section(b, "LEASES", []string{"COMPONENT", "NODE", "HOLDER", "RENEWED", "ERROR"},
		func(row func(...string)) {
			for _, l := range rows {
				row(l.Component, l.Node, l.Holder, l.RenewTime, l.Error)
			}
		})
}

// lockLine says who holds the haadm lock, for how long, and whether it
// went stale.
func lockLine(l *Lock) string {
	if l.Error != "" {
		return "unknown: " + oneLine(l.Error)
	}
	s := "held by " + l.Holder
	if l.Started != "" {
		s += fmt.Sprintf(" since %s (%s)", l.Started, time.Duration(l.AgeSeconds)*time.Second)
	}
	s += ", renewed " + l.RenewTime
	if l.Stale {
		s += "; stale: that run was probably killed or lost its connection"
	}
	return s
}

func nodeTable(b *bytes.Buffer, rows []Node) {
	section(b, "NODES", []string{"NAME", "IP", "ROLE", "TAINTED", "READY", "KUBELET"},
		func(row func(...string)) {
			for _, n := range rows {
				role := "worker"
				if n.ControlPlane {
					role = "control-plane"
				}
				row(n.Name, n.IP, role, yesNo(n.Tainted), yesNo(n.Ready), n.KubeletVersion)
			}
		})
}

// lbTable lists each load balancer with its backends indented below it.
func lbTable(b *bytes.Buffer, rows []LoadBalancer) {
	section(b, "LOAD BALANCERS", []string{"NODE", "LISTEN", "ADDRESS", "READY", "ERROR"},
		func(row func(...string)) {
			for _, l := range rows {
				node := l.Node
				if node == "" {
					node = "(external)"
				}
				row(node, l.Listen, l.Address, yesNo(l.Ready), l.Error)
				for _, be := range l.Backends {
					up := "down"
					if be.Up {
						up = "up"
					}
					row(blank, "-> backend", be.Address, up, be.Error)
				}
			}
		})
}

// blank is a cell left empty on purpose, where "-" would read as a value.
const blank = "\x00"

// section writes a titled table; empty cells show as "-" so that columns
// stay readable, and lines carry no trailing blanks.
func section(b *bytes.Buffer, title string, header []string, rows func(row func(...string))) {
	fmt.Fprintf(b, "\n%s\n", title)
	var t bytes.Buffer
	tw := tabwriter.NewWriter(&t, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	n := 0
	rows(func(cells ...string) {
		n++
		for i, c := range cells {
			if c != blank {
				cells[i] = dash(oneLine(c))
			} else {
				cells[i] = ""
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	})
	tw.Flush()
	if n == 0 {
		b.WriteString("(none)\n")
		return
	}
	for _, line := range strings.SplitAfter(t.String(), "\n") {
		if line != "" {
			b.WriteString(strings.TrimRight(line, " \n") + "\n")
		}
	}
}

// oneLine keeps multi-line errors (command output, readyz answers) from
// breaking the table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

func num(v uint64) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatUint(v, 10)
}

// size formats bytes the way etcdctl does (SI units).
func size(n int64) string {
	if n <= 0 {
		return ""
	}
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f, i := float64(n), 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
