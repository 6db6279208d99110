package etcdm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Stale returns, in their order, the members that never started or whose
// peer URLs are not in known (the peer URLs haadm expects, one per
// control-plane node). Either kind points at an earlier failed or foreign
// change that preflight should surface before haadm changes membership.
func Stale(members []Member, known []string) []Member {
	var out []Member
	for _, m := range members {
		if !m.Started() || !anyKnown(m, known) {
			out = append(out, m)
		}
	}
	return out
}

func anyKnown(m Member, known []string) bool {
	for _, k := range known {
		if m.hasPeerURL(k) {
			return true
		}
	}
	return false
}

// RemoveUnstartedLearner removes the learner with peerURL only if it never
// started, as kubeadm does after a failed join. Such a member holds no data
// and no vote, so removing it cannot cost quorum or lose anything; a started
// member or a voter is refused. A member that is already gone is not an
// error (removed is false).
//
// Membership can change between the check and the removal; the window is
// one round trip, and a learner that starts in it is still only a learner.
func RemoveUnstartedLearner(ctx context.Context, cli *clientv3.Client, peerURL string) (bool, error) {
	members, err := List(ctx, cli)
	if err != nil {
		return false, err
	}
	m, ok := FindByPeerURL(members, peerURL)
	switch {
	case !ok:
		return false, nil
	case !m.IsLearner:
		return false, fmt.Errorf("refusing to remove etcd member %s: it is a voter, and removing it changes quorum", m)
	case m.Started():
		return false, fmt.Errorf("refusing to remove etcd learner %s: it has started and may be catching up; "+
			"remove it by hand with `etcdctl member remove %s` if that is really wanted", m, m.HexID())
	}
	if _, err := cli.MemberRemove(ctx, m.ID); err != nil {
		if errors.Is(err, rpctypes.ErrMemberNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("removing unstarted etcd learner %s (%s): %w", m.HexID(), strings.Join(m.PeerURLs, ","), err)
	}
	return true, nil
}
