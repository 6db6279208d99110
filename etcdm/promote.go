package etcdm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// defaultPromoteTimeout matches kubeadm's etcd API call timeout; a learner of
// a cluster the size kubeadm runs catches up well within it.
const defaultPromoteTimeout = 2 * time.Minute

// PromoteOptions tunes Promote. The zero value is usable.
type PromoteOptions struct {
	// Timeout bounds the whole wait: for the learner to start and then to
	// catch up with the leader. Default 2m.
	Timeout time.Duration
	// Interval is the pause between attempts. Default 500ms.
	Interval time.Duration
	// Progress, if set, receives one human-readable line per change of state.
	Progress func(string)
	// StatusOf, if set, is used to report how far the learner's raft log is
	// behind the leader's while etcd refuses the promotion, and to confirm
	// the promotion from the member itself.
	StatusOf func(ctx context.Context, m Member) (*clientv3.StatusResponse, error)
	// Unconfirmed returns once etcd lists the member as a voter, without
	// asking the member itself (see confirmVoter), for a caller that waits
	// for the member anyway: a new member can take 7 s to serve clients
	// after its promotion, and the apiserver that starts next on its node
	// waits for it while starting.
	Unconfirmed bool
}

func (o PromoteOptions) withDefaults() PromoteOptions {
	if o.Timeout <= 0 {
		o.Timeout = defaultPromoteTimeout
	}
	if o.Interval <= 0 {
		o.Interval = defaultInterval
	}
	return o
}

// StatusViaClient is a PromoteOptions.StatusOf that asks the member's first
// client URL through cli (and so with cli's TLS settings).
func StatusViaClient(cli *clientv3.Client) func(ctx context.Context, m Member) (*clientv3.StatusResponse, error) {
	return func(ctx context.Context, m Member) (*clientv3.StatusResponse, error) {
		if len(m.ClientURLs) == 0 {
			return nil, fmt.Errorf("etcd member %s advertises no client URL", m)
		}
		return cli.Status(ctx, m.ClientURLs[0])
	}
}

// Promote waits until the learner with peerURL has started and is in sync
// with the leader, then promotes it to a voter. etcd itself refuses to
// promote a learner that is behind, so Promote retries while etcd answers
// that the learner is not ready. A member that is already a voter is success,
// so a re-run after a lost answer does no harm.
func Promote(ctx context.Context, cli *clientv3.Client, peerURL string, opts PromoteOptions) error {
	opts = opts.withDefaults()
	report := dedupe(opts.Progress)
	start := time.Now()
	m, err := waitStarted(ctx, cli, peerURL, opts.Timeout, opts.Interval, report)
	if err != nil {
		return err
	}
	if !m.IsLearner {
		report(fmt.Sprintf("member %s is already a voter", m.Name))
	} else {
		report(fmt.Sprintf("learner %s started", m.Name))
		if err := promoteStarted(ctx, cli, m, opts.Timeout-time.Since(start), opts, report); err != nil {
			return err
		}
	}
	if opts.Unconfirmed {
		report(fmt.Sprintf("member %s is a voter; not waiting for it to serve clients", m.Name))
		return nil
	}
	confirmVoter(ctx, m, min(opts.Timeout-time.Since(start), confirmTimeout), opts, report)
	return nil
}

// confirmTimeout bounds confirmVoter: a member applies its promotion within
// moments, so a longer wait means haadm cannot reach it, which is no reason
// to hold up the caller for the rest of the promote timeout.
const confirmTimeout = 15 * time.Second

// confirmAttempt bounds one of confirmVoter's status calls: two polling
// intervals, at least one second, at most the RPC timeout. A status is
// one small round trip.
func confirmAttempt(interval time.Duration) time.Duration {
	return min(max(2*interval, time.Second), rpcTimeout)
}

// confirmVoter waits, if it can ask the member, until the member itself has
// applied its promotion: the cluster lists it as a voter as soon as the
// leader applies the change, while the member refuses client requests as a
// learner a little longer, and callers go on to point clients at it. The
// promotion has happened whatever the answer, so this never fails.
func confirmVoter(parent context.Context, m Member, timeout time.Duration, opts PromoteOptions, report func(string)) {
	if opts.StatusOf == nil {
		return
	}
	ctx, cancel := context.WithTimeout(parent, max(timeout, opts.Interval))
	defer cancel()
	var lastErr error
	err := poll(ctx, opts.Interval, func(ctx context.Context) (bool, error) {
		// Each attempt is short: in the lab the first status asked of a
		// member just promoted hung for the whole 5 s RPC timeout while
		// the next, a new connection, answered at once.
		sctx, cancel := context.WithTimeout(ctx, confirmAttempt(opts.Interval))
		defer cancel()
		st, err := opts.StatusOf(sctx, m)
		switch {
		case err != nil:
			lastErr = err
			report(fmt.Sprintf("asking member %s whether it applied its promotion: %v", m.Name, err))
		case st == nil:
			lastErr = errors.New("no status")
		case st.IsLearner:
			lastErr = errors.New("it still reports itself a learner")
		default:
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		report(fmt.Sprintf("member %s is promoted, but could not confirm it from the member itself: %v", m.Name, lastErr))
	}
}

func promoteStarted(parent context.Context, cli *clientv3.Client, m Member, timeout time.Duration, opts PromoteOptions, report func(string)) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var lastErr error
	err := poll(ctx, opts.Interval, func(ctx context.Context) (bool, error) {
		// Listed first on every attempt: a promote whose answer was lost
		// may have been applied, and promoting a voter is an error.
		members, err := listOnce(ctx, cli)
		if err != nil {
			if ctx.Err() == nil { // else cut short by our own deadline
				lastErr = err
			}
			return false, nil
		}
		cur, ok := findByID(members, m.ID)
		if !ok {
			return false, fmt.Errorf("etcd learner %s was removed while waiting to promote it", m)
		}
		if !cur.IsLearner {
			report(fmt.Sprintf("learner %s promoted to voter", m.Name))
			return true, nil
		}
		err = promoteOnce(ctx, cli, m.ID)
		switch {
		case err == nil, errors.Is(err, rpctypes.ErrMemberNotLearner):
			report(fmt.Sprintf("learner %s promoted to voter", m.Name))
			return true, nil
		case errors.Is(err, rpctypes.ErrMemberNotFound):
			return false, fmt.Errorf("etcd learner %s was removed while waiting to promote it", m)
		case learnerNotReady(err):
			lastErr = err
			report(syncLine(ctx, opts.StatusOf, cur, members))
		case ctx.Err() != nil:
			// Cut short by our own deadline; the previous error says more.
		default:
			// Leader elections and timeouts pass; anything lasting is
			// reported when the wait ends.
			lastErr = err
			report(fmt.Sprintf("promoting learner %s failed (%v), retrying", m.Name, err))
		}
		return false, nil
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil:
		return err
	case parent.Err() != nil:
		return fmt.Errorf("promoting etcd learner %s: %w", m, parent.Err())
	case lastErr == nil:
		return fmt.Errorf("promoting etcd learner %s: %w", m, err)
	case learnerNotReady(lastErr):
		return fmt.Errorf("etcd learner %s did not catch up with the leader within %s: %w", m, opts.Timeout, lastErr)
	}
	return fmt.Errorf("promoting etcd learner %s did not succeed within %s: %w", m, opts.Timeout, lastErr)
}

func promoteOnce(ctx context.Context, cli *clientv3.Client, id uint64) error {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	_, err := cli.MemberPromote(ctx, id)
	return err
}

// learnerNotReady also matches etcd's message, since errors relayed from the
// leader over HTTP may arrive without their gRPC status. The message of
// ErrMemberNotLearner is a prefix of this one, hence the distinctive suffix.
func learnerNotReady(err error) bool {
	return errors.Is(err, rpctypes.ErrMemberLearnerNotReady) ||
		strings.Contains(err.Error(), "which is in sync with leader")
}

// syncLine says how far behind the learner is, as far as statusOf can tell.
func syncLine(ctx context.Context, statusOf func(context.Context, Member) (*clientv3.StatusResponse, error), learner Member, members []Member) string {
	fallback := fmt.Sprintf("learner %s is not in sync with the leader yet, waiting", learner.Name)
	if statusOf == nil {
		return fallback
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	ls, err := statusOf(ctx, learner)
	if err != nil || ls == nil {
		return fallback
	}
	leader, ok := findByID(members, ls.Leader)
	if !ok {
		return fmt.Sprintf("learner %s at raft index %d, waiting", learner.Name, ls.RaftIndex)
	}
	lead, err := statusOf(ctx, leader)
	if err != nil || lead == nil {
		return fmt.Sprintf("learner %s at raft index %d, waiting", learner.Name, ls.RaftIndex)
	}
	return fmt.Sprintf("learner %s at raft index %d of %d, waiting", learner.Name, ls.RaftIndex, lead.RaftIndex)
}

func findByID(members []Member, id uint64) (Member, bool) {
	for _, m := range members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// dedupe drops a line equal to the previous one, so that waiting at the same
// point for many intervals prints once.
func dedupe(progress func(string)) func(string) {
	var last string
	return func(s string) {
		if progress == nil || s == last {
			return
		}
		last = s
		progress(s)
	}
}
