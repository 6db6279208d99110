// lab-init is PID 1 of a lab node: it gives the node its own hostname and its
// own copies of the directories a Kubernetes node writes to, then supervises
// containerd, sshd, the kubelet and (once enabled) nginx the way systemd would
// on a real machine, and reaps every orphan in the node's PID namespace.
//
// The node is entered by lab/lab.sh as
//
//	nsenter --net=/run/netns/N -- unshare --mount --uts --ipc --pid --fork \
//	    --kill-child --mount-proc --propagation private lab-init N IP ROOT BIN
//
// The fake systemctl (lab/files/systemctl) talks to the supervisor through
// files under /run/lab: <svc>.pid, <svc>.enabled, <svc>.stopped.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: lab-init NODE IP NODE_ROOT LAB_BIN")
		os.Exit(2)
	}
	n := nodeSpec{name: os.Args[1], ip: os.Args[2], root: os.Args[3], bin: os.Args[4]}
	if err := setup(n); err != nil {
		fmt.Fprintf(os.Stderr, "lab-init %s: %v\n", n.name, err)
		os.Exit(1)
	}
	supervise(n)
}

type nodeSpec struct{ name, ip, root, bin string }

// dirs are bound per node: everything kubeadm, the kubelet, containerd, etcd,
// sshd, nginx, haproxy and keepalived write, so three nodes share one machine without seeing each
// other's state. /root too, as on a fresh machine: sshd runs each command
// through root's bash, which reads ~/.bashrc, and the host's (a developer's,
// with pyenv and the like) forked dozens of processes for every command
// haadm ran, 0.15-0.2 s each on the loaded lab.
var nodeDirs = []string{
	"/etc/kubernetes", "/var/lib/kubelet", "/var/lib/etcd", "/var/lib/containerd",
	"/etc/containerd", "/etc/cni/net.d", "/var/log", "/etc/ssh", "/root",
	"/etc/nginx", "/var/lib/nginx", "/etc/haproxy", "/etc/keepalived", "/var/lib/haadm", "/var/backups/haadm", "/tmp", "/run",
}

var nodeFiles = []string{"/etc/hosts", "/etc/resolv.conf"}

func setup(n nodeSpec) error {
	if err := unix.Sethostname([]byte(n.name)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	for _, d := range nodeDirs {
		src := filepath.Join(n.root, d)
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(src, d, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", d, err)
		}
	}
	for _, f := range nodeFiles {
		if err := unix.Mount(filepath.Join(n.root, f), f, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", f, err)
		}
	}
	// The lab's binaries (kubeadm, kubelet, kubectl, etcdctl, the fake
	// systemctl) come first on PATH inside the node only.
	if err := unix.Mount(n.bin, "/usr/local/bin", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind /usr/local/bin: %w", err)
	}
	if _, err := os.Stat("/usr/bin/systemctl"); err == nil {
		if err := unix.Mount(filepath.Join(n.bin, "systemctl"), "/usr/bin/systemctl", "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind systemctl: %w", err)
		}
	}
	// The kubelet needs shared propagation for its volume mounts.
	if err := unix.Mount("", "/", "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make-rshared /: %w", err)
	}
	for _, d := range []string{"/run/lab", "/run/sshd", "/run/haproxy", "/var/log/lab", "/var/log/nginx"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644)
}

type service struct {
	name string
	argv []string
	// ready reports whether the service is configured enough to start.
	ready   func() bool
	pid     int
	started time.Time
	backoff time.Duration
	next    time.Time
}

func services() []*service {
	exists := func(p string) func() bool {
		return func() bool { _, err := os.Stat(p); return err == nil }
	}
	enabled := func(s string) func() bool { return exists("/run/lab/" + s + ".enabled") }
	return []*service{
		{name: "containerd", argv: []string{"/usr/bin/containerd", "--config", "/etc/containerd/config.toml"}, ready: exists("/etc/containerd/config.toml")},
		{name: "sshd", argv: []string{"/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config"}, ready: exists("/etc/ssh/sshd_config")},
		// Like the systemd unit kubeadm expects: it starts only once kubeadm
		// wrote its config (lab-kubelet exits early otherwise).
		{name: "kubelet", argv: []string{"/usr/local/bin/lab-kubelet"}, ready: exists("/var/lib/kubelet/config.yaml")},
		{name: "nginx", argv: []string{"/usr/sbin/nginx", "-g", "daemon off;"}, ready: enabled("nginx")},
		// As Debian's units run them: haproxy in master-worker mode (it
		// reloads on SIGUSR2), keepalived in the foreground.
		{name: "haproxy", argv: []string{"/usr/sbin/haproxy", "-Ws", "-f", "/etc/haproxy/haproxy.cfg", "-p", "/run/haproxy.pid"}, ready: enabled("haproxy")},
		{name: "keepalived", argv: []string{"/usr/sbin/keepalived", "--dont-fork", "--log-console", "-f", "/etc/keepalived/keepalived.conf"}, ready: enabled("keepalived")},
	}
}

func supervise(n nodeSpec) {
	svcs := services()
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	env := append(os.Environ(), "LAB_NODE="+n.name, "LAB_NODE_IP="+n.ip,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	null, err := os.Open(os.DevNull)
	if err != nil {
		logf("open %s: %v", os.DevNull, err)
		os.Exit(1)
	}
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGTERM || s == syscall.SIGINT {
				for _, sv := range svcs {
					if sv.pid > 0 {
						_ = syscall.Kill(sv.pid, syscall.SIGTERM)
					}
				}
				time.Sleep(2 * time.Second)
				os.Exit(0)
			}
		case <-tick.C:
		}
		reap(svcs)
		for _, sv := range svcs {
			manage(sv, env, null.Fd())
		}
	}
}

// reap collects every exited child: supervised services and orphans that the
// kernel re-parented to us (container shims, kubeadm's children...).
func reap(svcs []*service) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
		for _, sv := range svcs {
			if sv.pid == pid {
				logf("%s (pid %d) exited: %s", sv.name, pid, describe(ws))
				sv.pid = 0
				_ = os.Remove("/run/lab/" + sv.name + ".pid")
				// A service that ran a while restarts at once; a crash loop
				// backs off up to 5 s, like systemd's RestartSec.
				if time.Since(sv.started) > 10*time.Second {
					sv.backoff = 0
				} else if sv.backoff < 5*time.Second {
					sv.backoff += time.Second
				}
				sv.next = time.Now().Add(sv.backoff)
			}
		}
	}
}

func manage(sv *service, env []string, null uintptr) {
	_, stoppedErr := os.Stat("/run/lab/" + sv.name + ".stopped")
	stopped := stoppedErr == nil
	if sv.pid > 0 {
		if stopped {
			_ = syscall.Kill(sv.pid, syscall.SIGTERM)
		}
		return
	}
	if stopped || !sv.ready() || time.Now().Before(sv.next) {
		return
	}
	logFile, err := os.OpenFile("/var/log/lab/"+sv.name+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		logf("%s: open log: %v", sv.name, err)
		return
	}
	defer logFile.Close()
	pid, err := syscall.ForkExec(sv.argv[0], sv.argv, &syscall.ProcAttr{
		Dir:   "/",
		Env:   env,
		Files: []uintptr{null, logFile.Fd(), logFile.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		logf("%s: start: %v", sv.name, err)
		sv.next = time.Now().Add(5 * time.Second)
		return
	}
	sv.pid, sv.started = pid, time.Now()
	_ = os.WriteFile("/run/lab/"+sv.name+".pid", []byte(fmt.Sprintf("%d\n", pid)), 0o644)
	logf("%s started (pid %d): %s", sv.name, pid, strings.Join(sv.argv, " "))
}

func describe(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", ws.ExitStatus())
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s lab-init: %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, a...))
}
