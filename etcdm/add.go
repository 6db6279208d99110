package etcdm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
			if m, ok := FindByPeerURL(ms, peerURL); ok {
				self, members = m, ms
				return true, nil
			}
		}
		ms, err := addOnce(ctx, cli, peerURL)
		if err == nil {
			if m, ok := FindByPeerURL(ms, peerURL); ok {
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
