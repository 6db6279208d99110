package cmd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/haadm/haadm/phases"
)

// The SSH flags reach node.SSHOptions, and its warnings reach both the
// console and the log file.
func TestSSHOptions(t *testing.T) {
	g := &globalFlags{sshConfig: "/cfg", sshUser: "ops", sshKey: "/k", sshJump: "gate,edge:2222", insecureIgnoreHostKey: true}
	var console, logFile bytes.Buffer
	o := sshOptions(g, phases.NewProgress(&console, &logFile))
	if o.ConfigFile != "/cfg" || o.User != "ops" || o.IdentityFile != "/k" || o.ProxyJump != "gate,edge:2222" || !o.InsecureIgnoreHostKey || o.Timeout <= 0 {
		t.Errorf("options: %+v", o)
	}
	if o.Logf == nil {
		t.Fatal("Logf not set: host key warnings would be lost")
	}
	o.Logf("WARNING: node %s: host key NOT verified", "emei")
	for name, b := range map[string]*bytes.Buffer{"console": &console, "log file": &logFile} {
		if !strings.Contains(b.String(), "WARNING: node emei: host key NOT verified") || strings.Count(b.String(), "\n") != 1 {
			t.Errorf("%s: %q", name, b.String())
		}
	}
}
