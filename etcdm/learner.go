package etcdm

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// EnsureLearner makes sure a member with peerURL exists. If absent it is
// added with MemberAddAsLearner; if present, learner or voter, nothing is
// added, so a re-run after a failed join reuses the member it added before.
//
// It returns the member and the value for the new member's --initial-cluster
// flag: name=peerURL for every started member in ID order, then this one.
// Another member that never started is an error (a *StaleMembersError): it
// was left by a failed join and must be removed first.
func EnsureLearner(ctx context.Context, cli *clientv3.Client, name, peerURL string) (Member, string, error) {
	if err := validateName(name); err != nil {
		return Member{}, "", err
	}
	if err := validatePeerURL(peerURL); err != nil {
		return Member{}, "", err
	}
	members, err := List(ctx, cli)
	if err != nil {
		return Member{}, "", err
	}
	self, found := FindByPeerURL(members, peerURL)
	// Checked before adding: a member added into a cluster that cannot take
	// it would only be one more stale member to clean up.
	if err := checkOthers(members, self, found, name, peerURL); err != nil {
		return self, "", err
	}
	if !found {
		self, members, err = addLearner(ctx, cli, members, peerURL)
		if err != nil {
			return Member{}, "", err
		}
		// Again, for a concurrent join that added a member meanwhile: its
		// unnamed entry would make the --initial-cluster value invalid.
		if err := checkOthers(members, self, true, name, peerURL); err != nil {
			return self, "", err
		}
	}
	if self.Started() && self.Name != name {
		// etcd matches its own --name against --initial-cluster, and an
		// existing member keeps the name it first started with.
		return self, "", fmt.Errorf("etcd member %s with peer URL %s already started under the name %q, not %q",
			self.HexID(), peerURL, self.Name, name)
	}
	return self, initialCluster(members, self, name), nil
}

// checkOthers refuses a join that etcd would accept but that would leave the
// cluster worse off: a stale unstarted member, or a second member of the same
// name (--initial-cluster would then give one name two members' URLs).
func checkOthers(members []Member, self Member, found bool, name, peerURL string) error {
	var stale []Member
	for _, m := range members {
		if found && m.ID == self.ID {
			continue
		}
		if !m.Started() {
			stale = append(stale, m)
			continue
		}
		if m.Name == name {
			return fmt.Errorf("etcd member %s already uses the name %q with peer URL %s, not %s; "+
				"remove it first if that node was replaced", m.HexID(), name, strings.Join(m.PeerURLs, ","), peerURL)
		}
	}
	if len(stale) > 0 {
		return &StaleMembersError{Members: stale}
	}
	return nil
}

// initialCluster builds the --initial-cluster value. The new member goes last
// under the name it will start with, which etcd checks against its --name.
// The caller has made sure every other member has started, so has a name.
func initialCluster(members []Member, self Member, name string) string {
	var parts []string
	for _, m := range members {
		if m.ID == self.ID {
			continue
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, m.Name+"="+u)
		}
	}
	for _, u := range self.PeerURLs {
		parts = append(parts, name+"="+u)
	}
	return strings.Join(parts, ",")
}

// validateName rejects names that would corrupt the --initial-cluster syntax.
func validateName(name string) error {
	if name == "" || strings.ContainsAny(name, ",= \t\n") {
		return fmt.Errorf("invalid etcd member name %q: must be non-empty without ',', '=' or spaces", name)
	}
	return nil
}

// validatePeerURL checks what etcd would reject, before asking etcd, so that
// a typo fails with the URL in the message rather than etcd's parse error.
func validatePeerURL(peerURL string) error {
	u, err := url.Parse(peerURL)
	if err != nil {
		return fmt.Errorf("invalid etcd peer URL %q: %w", peerURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" || u.Path != "" || u.RawQuery != "" {
		return fmt.Errorf("invalid etcd peer URL %q: want http(s)://host:port", peerURL)
	}
	return nil
}
