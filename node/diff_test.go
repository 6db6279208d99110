package node

import (
	"strings"
	"testing"
)

const testKeyPEM = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBAD-SECRET-MATERIAL\n-----END EC PRIVATE KEY-----\n"

func TestDiff(t *testing.T) {
	t.Parallel()
	got := Diff("/x", []byte("a\nb"), []byte("a\nc\n"), true)
	want := "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := Diff("/y", nil, []byte{}, false); !strings.Contains(got, "new empty file") {
		t.Errorf("empty new file: %q", got)
	}
	got = Diff("/etc/kubernetes/new.yaml", nil, []byte("hello\n"), false)
	if !strings.Contains(got, "/dev/null (new file)") || !strings.Contains(got, "+hello") {
		t.Errorf("new file: %q", got)
	}
}

// Diff output is printed to terminals and CI logs: no key material in it.
func TestDiffRedactsKeys(t *testing.T) {
	t.Parallel()
	newKey := strings.Replace(testKeyPEM, "BAD", "NEW", 1)
	oldConf := "users:\n- user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZLU9MRA==\n"
	newConf := "users:\n- user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZLU5FVw==\n"

	keys := []string{
		// By content and name.
		Diff("/etc/kubernetes/pki/sa.key", []byte(testKeyPEM), []byte(newKey), true),
		// A new key file.
		Diff("/etc/kubernetes/pki/etcd/new.key", nil, []byte(newKey), false),
		// By content only: a PEM bundle with a key in it.
		Diff("/somewhere/else.pem", nil, []byte("cert\n"+testKeyPEM), false),
		// By name only: a .key file without PEM markers.
		Diff("/etc/kubernetes/pki/raw.key", []byte("RAW-SECRET-OLD"), []byte("RAW-SECRET-NEW"), true),
	}
	for i, d := range keys {
		if !strings.Contains(d, "(private key content changed, ") {
			t.Errorf("key diff %d: %q", i, d)
		}
	}
	conf := Diff("/etc/kubernetes/admin.conf", []byte(oldConf), []byte(newConf), true)
	if !strings.Contains(conf, "-    client-key-data: (redacted") || !strings.Contains(conf, "+    client-key-data: (redacted") {
		t.Errorf("kubeconfig diff: %s", conf)
	}
	all := strings.Join(append(keys, conf), "")
	for _, secret := range []string{"SECRET", "S0VZLU9MRA", "S0VZLU5FVw"} {
		if strings.Contains(all, secret) {
			t.Errorf("diff shows key material %q:\n%s", secret, all)
		}
	}

	// A change of only the secret still shows, without the secret.
	tok := Diff("/etc/kubernetes/bootstrap.conf", []byte("    token: abc.def\n"), []byte("    token: abc.xyz\n"), true)
	if strings.Contains(tok, "abc.") || !strings.Contains(tok, "(redacted, sha256:") {
		t.Errorf("token diff: %q", tok)
	}
}

// TestDiffRedactsEncryptionKeys: an EncryptionConfiguration's keys are
// secrets like any private key.
func TestDiffRedactsEncryptionKeys(t *testing.T) {
	t.Parallel()
	conf := []byte("kind: EncryptionConfiguration\nresources:\n- providers:\n  - aescbc:\n      keys:\n      - name: key1\n        secret: c2VjcmV0LWtleS1ieXRlcy0xMjM0NTY3ODkwMTI=\n")
	d := Diff("/etc/kubernetes/enc/enc.yaml", nil, conf, false)
	if strings.Contains(d, "c2VjcmV0") {
		t.Errorf("diff shows the key:\n%s", d)
	}
	if !strings.Contains(d, "secret:") || !strings.Contains(d, "name: key1") {
		t.Errorf("diff lost the structure:\n%s", d)
	}
}
