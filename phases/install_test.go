package phases

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallCommandKeepsServicesDown runs the apt-get install command in
// a real shell, with an apt-get that reports what Debian's maintainer
// scripts would see: a policy-rc.d that forbids starting services, gone
// again afterwards; and the exit status of a failed install.
func TestInstallCommandKeepsServicesDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the command writes /usr/sbin/policy-rc.d")
	}
	if _, err := os.Stat("/usr/sbin/policy-rc.d"); err == nil {
		t.Skip("this machine has a policy-rc.d of its own")
	}
	bin := t.TempDir()
	fake := "#!/bin/sh\n/usr/sbin/policy-rc.d nginx start; echo \"policy=$? args=$*\" >> " + filepath.Join(bin, "calls") + "\n[ \"$1\" = update ] || exit ${FAIL:-0}\n"
	if err := os.WriteFile(filepath.Join(bin, "apt-get"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(fail string) (string, error) {
		os.Remove(filepath.Join(bin, "calls"))
		cmd := exec.Command("sh", "-c", installCommand("apt-get", []string{"nginx-light", "libnginx-mod-stream"}))
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "FAIL="+fail)
		_, err := cmd.CombinedOutput()
		calls, _ := os.ReadFile(filepath.Join(bin, "calls"))
		return string(calls), err
	}
	calls, err := run("0")
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if !strings.Contains(calls, "policy=101 args=install -y -q --no-install-recommends nginx-light libnginx-mod-stream") {
		t.Errorf("apt-get saw %q, want services forbidden (101) during the install", calls)
	}
	if _, err := os.Stat("/usr/sbin/policy-rc.d"); err == nil {
		t.Error("policy-rc.d left behind")
	}
	calls, err = run("100")
	if err == nil {
		t.Error("a failing install reported success")
	}
	if !strings.Contains(calls, "args=update") || strings.Count(calls, "args=install") != 2 {
		t.Errorf("a failing install is retried once after apt-get update; calls:\n%s", calls)
	}
	if _, err := os.Stat("/usr/sbin/policy-rc.d"); err == nil {
		t.Error("policy-rc.d left behind after a failure")
	}
}
