//go:build unix

package node

import (
	"os/exec"
	"syscall"
)

// killProcessGroupOnCancel runs the command in its own process group and
// kills the whole group on cancellation: killing only /bin/sh would leave
// e.g. a `sleep` child running and holding the output pipes.
func killProcessGroupOnCancel(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error {
		return syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
}
