package node

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// sshAuth gathers the keys to try: the agent's, then the identity files'.
// They go into a single publickey method because the ssh package tries each
// method name only once.
type sshAuth struct {
	signers []ssh.Signer
	// notes explain keys that could not be used; they are only shown when
	// authentication fails, since OpenSSH also carries on without them.
	notes     []string
	agentConn net.Conn
}

func newSSHAuth(s *sshSettings) *sshAuth {
	a := &sshAuth{}
	var filePubs []ssh.PublicKey // public halves of identity files, usable or not
	var fileSigners []ssh.Signer
	for _, path := range s.identityFiles {
		pem, err := os.ReadFile(path)
		if err != nil {
			if s.explicitIdentities || !errors.Is(err, fs.ErrNotExist) {
				a.notes = append(a.notes, fmt.Sprintf("identity file %s: %v", path, err))
			}
			continue
		}
		signer, err := ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		switch {
		case err == nil:
			fileSigners = append(fileSigners, signer)
			filePubs = append(filePubs, signer.PublicKey())
		case errors.As(err, &missing):
			pub := missing.PublicKey
			if pub == nil {
				pub = readPublicKey(path + ".pub")
			}
			if pub != nil {
				filePubs = append(filePubs, pub)
			}
			a.notes = append(a.notes, fmt.Sprintf(
				"identity file %s is protected by a passphrase, which haadm cannot ask for: "+
					"load it into ssh-agent (eval $(ssh-agent); ssh-add %s) and make sure SSH_AUTH_SOCK is set",
				path, ShellQuote(path)))
		default:
			a.notes = append(a.notes, fmt.Sprintf("identity file %s: %v", path, err))
		}
	}

	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			a.notes = append(a.notes, fmt.Sprintf("ssh-agent at SSH_AUTH_SOCK=%s: %v", sock, err))
		} else {
			a.agentConn = conn
			agentSigners, err := agent.NewClient(conn).Signers()
			if err != nil {
				a.notes = append(a.notes, fmt.Sprintf("ssh-agent: %v", err))
			}
			for _, sg := range agentSigners {
				// IdentitiesOnly limits the agent to the configured
				// identities, as in OpenSSH; this is also how a
				// passphrase-protected identity file gets used.
				if s.identitiesOnly && s.explicitIdentities && !containsKey(filePubs, sg.PublicKey()) {
					continue
				}
				a.signers = append(a.signers, sg)
			}
		}
	}
	for _, sg := range fileSigners {
		if !containsKey(signersKeys(a.signers), sg.PublicKey()) {
			a.signers = append(a.signers, sg)
		}
	}
	return a
}

func (a *sshAuth) methods() []ssh.AuthMethod {
	if len(a.signers) == 0 {
		return nil
	}
	return []ssh.AuthMethod{ssh.PublicKeys(a.signers...)}
}

// explain adds the notes to an authentication failure.
func (a *sshAuth) explain(err error) error {
	if len(a.notes) == 0 {
		return err
	}
	return fmt.Errorf("%w\n  %s", err, strings.Join(a.notes, "\n  "))
}

func (a *sshAuth) close() {
	if a.agentConn != nil {
		a.agentConn.Close()
	}
}

func readPublicKey(path string) ssh.PublicKey {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	return pub
}

func signersKeys(ss []ssh.Signer) []ssh.PublicKey {
	keys := make([]ssh.PublicKey, len(ss))
	for i, s := range ss {
		keys[i] = s.PublicKey()
	}
	return keys
}

func containsKey(keys []ssh.PublicKey, k ssh.PublicKey) bool {
	for _, x := range keys {
		if bytes.Equal(x.Marshal(), k.Marshal()) {
			return true
		}
	}
	return false
}
