//go:build !unix

package node

import "os/exec"

func killProcessGroupOnCancel(*exec.Cmd) {}
