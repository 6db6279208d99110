package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// labLock is the lock every user of the lab takes (lab/e2e.sh runs under
// `flock /tmp/haadm-lab.lock`): one lab on the machine at a time.
const labLock = "/tmp/haadm-lab.lock"

// lockLab takes the lab's lock for the whole bench, waiting for another
// user's run to end. The descriptor is close-on-exec: the lab's nodes
// never inherit it. The returned function releases it.
func lockLab(ctx context.Context, log io.Writer) (func(), error) {
	f, err := os.OpenFile(labLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab lock %s: %w", labLock, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintf(log, "[bench] waiting for the lab lock %s (another lab run holds it)\n", labLock)
		done := make(chan error, 1)
		go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
		select {
		case err := <-done:
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("lab lock %s: %w", labLock, err)
			}
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lab lock %s: %w", labLock, ctx.Err())
		}
	}
	return func() { f.Close() }, nil
}

// labSpec is the lab a run needs.
type labSpec struct {
	nodes, spare int
	// controlPlaneEndpoint makes kubeadm init set it
	// (LAB_CONTROL_PLANE_ENDPOINT): the kubeadm baseline.
	controlPlaneEndpoint string
}

// labUp removes whatever lab is there and brings up a fresh one, its
// output in logPath. It returns how long down and up took.
func (b *bench) labUp(ctx context.Context, spec labSpec, logPath string) (time.Duration, error) {
	t0 := time.Now()
	if err := b.labSh(ctx, logPath, nil, "down"); err != nil {
		return 0, err
	}
	env := []string{
		"LAB_NODES=" + strconv.Itoa(spec.nodes), "LAB_SPARE=" + strconv.Itoa(spec.spare),
		"LAB_PROFILE=plain", "LAB_ACCESS=direct", "LAB_UPGRADE_TO=",
		"LAB_CONTROL_PLANE_ENDPOINT=" + spec.controlPlaneEndpoint,
	}
	if err := b.labSh(ctx, logPath, env, "up"); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// labSh runs lab/lab.sh VERB with env added, appending its output to
// logPath; a failure names the verb and ends with the log's last lines.
func (b *bench) labSh(ctx context.Context, logPath string, env []string, verb string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab log: %w", err)
	}
	defer f.Close()
	var tail bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(b.cfg.repo, "lab/lab.sh"), verb)
	cmd.Dir = b.cfg.repo
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = io.MultiWriter(f, &tail), io.MultiWriter(f, &tail)
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("lab/lab.sh %s %s: %w (log %s):\n%s", strings.Join(env, " "), verb, err, logPath, lastLines(tail.String(), 8))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kubeconfig and sshConfig are the lab's files for this worktree.
func (b *bench) kubeconfig() string { return filepath.Join(b.cfg.repo, ".lab/kubeconfig") }
func (b *bench) sshConfig() string  { return filepath.Join(b.cfg.repo, ".lab/ssh_config") }

// ssh runs cmd on a lab node as root (the lab's direct access) and
// returns its output; an error names the node and the command.
func (b *bench) ssh(ctx context.Context, node, cmd string) (string, error) {
	out, err := exec.CommandContext(ctx, "ssh", "-F", b.sshConfig(), node, cmd).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ssh %s %q: %w: %s", node, cmd, err, lastLines(string(out), 6))
	}
	return string(out), nil
}

// link sets a lab node's eth0 up or down: the node cut off the network,
// its processes still running.
func link(ctx context.Context, node string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	out, err := exec.CommandContext(ctx, "ip", "-n", "haadm-"+node, "link", "set", "eth0", state).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip -n haadm-%s link set eth0 %s: %w: %s", node, state, err, out)
	}
	return nil
}

// result is one haadm command as run by the bench.
type result struct {
	took           time.Duration
	start, end     time.Time
	code           int
	stdout, stderr string
	logFile        string
}

// haadm runs the haadm binary against the lab, its log in logFile, from
// a scratch directory (promote leaves its backups in the working one).
func (b *bench) haadm(ctx context.Context, logFile string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	all := append([]string{"--kubeconfig", b.kubeconfig(), "--ssh-config", b.sshConfig(), "--log-file", logFile}, args...)
	cmd := exec.CommandContext(ctx, b.cfg.haadm, all...)
	cmd.Dir = b.scratch
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	r := result{logFile: logFile, start: time.Now()}
	err := cmd.Run()
	r.end = time.Now()
	r.took = r.end.Sub(r.start)
	r.stdout, r.stderr = so.String(), se.String()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		return r, fmt.Errorf("haadm %s: %w", strings.Join(args, " "), err)
	}
	return r, nil
}
