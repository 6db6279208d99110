package etcdm

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	self, found := findByPeerURL(members, peerURL)
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

// addTimeout bounds the retries of an add. etcd refuses member changes for
// HealthInterval (5s) after its leader lost or gained a peer connection, so
// an add right after a promotion is refused for a few seconds; a refusal
// that outlasts this is a voter that is really down.
const addTimeout = 30 * time.Second

// addLearner adds peerURL as a learner, retrying while etcd's refusal is
// transient. After a failed attempt the next one lists first, because the
// add may have been applied even though its answer was lost.
func addLearner(parent context.Context, cli *clientv3.Client, before []Member, peerURL string) (Member, []Member, error) {
	ctx, cancel := context.WithTimeout(parent, addTimeout)
	defer cancel()
	var (
		self    Member
		members []Member
		lastErr error
	)
	err := poll(ctx, defaultInterval, func(ctx context.Context) (bool, error) {
		if lastErr != nil {
			ms, err := listOnce(ctx, cli)
			if err != nil {
				return false, nil
			}
			if m, ok := findByPeerURL(ms, peerURL); ok {
				self, members = m, ms
				return true, nil
			}
		}
		ms, err := addOnce(ctx, cli, peerURL)
		if err == nil {
			if m, ok := findByPeerURL(ms, peerURL); ok {
				self, members = m, ms
				return true, nil
			}
			err = errors.New("etcd accepted the member but did not list it")
		}
		switch {
		case errors.Is(err, rpctypes.ErrTooManyLearners):
			return false, fmt.Errorf("adding etcd learner %s: %w: %s must be promoted or removed first",
				peerURL, err, describeLearners(before))
		case errors.Is(err, rpctypes.ErrPeerURLExist), transient(err):
			if ctx.Err() == nil {
				lastErr = err
			}
			return false, nil
		}
		return false, fmt.Errorf("adding etcd learner %s: %w", peerURL, err)
	})
	switch {
	case err == nil:
		return self, members, nil
	case ctx.Err() == nil || parent.Err() != nil || lastErr == nil:
		return Member{}, nil, fmt.Errorf("adding etcd learner %s: %w", peerURL, err)
	case errors.Is(lastErr, rpctypes.ErrUnhealthy):
		return Member{}, nil, fmt.Errorf("adding etcd learner %s: etcd kept refusing for %s (%w): "+
			"it adds members only once its leader has been connected to every voter for 5s; is a voter down?",
			peerURL, addTimeout, lastErr)
	}
	return Member{}, nil, fmt.Errorf("adding etcd learner %s did not succeed within %s: %w", peerURL, addTimeout, lastErr)
}

func addOnce(ctx context.Context, cli *clientv3.Client, peerURL string) ([]Member, error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := cli.MemberAddAsLearner(ctx, []string{peerURL})
	if err != nil {
		return nil, err
	}
	return fromPB(resp.Members), nil
}

// transient reports refusals that pass by themselves: elections, etcd's
// post-reconfiguration health window, and calls cut by the per-call timeout.
func transient(err error) bool {
	for _, t := range []error{
		rpctypes.ErrUnhealthy, rpctypes.ErrNoLeader, rpctypes.ErrNotLeader, rpctypes.ErrLeaderChanged,
		rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost,
		rpctypes.ErrTimeoutWaitAppliedIndex, context.DeadlineExceeded,
	} {
		if errors.Is(err, t) {
			return true
		}
	}
	return status.Code(err) == codes.Unavailable
}

func describeLearners(members []Member) string {
	var names []string
	for _, m := range members {
		if m.IsLearner {
			names = append(names, m.String())
		}
	}
	if len(names) == 0 {
		return "the existing learner"
	}
	return strings.Join(names, ", ")
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
