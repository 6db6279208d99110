package etcdm

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// StaleMembersError reports members that were added but never started,
// typically left behind by a failed join. They must go before another member
// joins: an unstarted voter counts towards quorum without ever voting, and
// etcd allows only one learner at a time.
type StaleMembersError struct {
	Members []Member
}

func (e *StaleMembersError) Error() string {
	var b strings.Builder
	b.WriteString("etcd has members that were added but never started (left by a failed join?): ")
	for i, m := range e.Members {
		if i > 0 {
			b.WriteString("; ")
		}
		kind := "learner"
		if !m.IsLearner {
			kind = "voter"
		}
		fmt.Fprintf(&b, "%s %s with peer URL %s", kind, m.HexID(), strings.Join(m.PeerURLs, ","))
	}
	b.WriteString(". Remove them with")
	for _, m := range e.Members {
		fmt.Fprintf(&b, " `etcdctl member remove %s`", m.HexID())
	}
	if e.allLearners() {
		b.WriteString(", or re-run haadm with --remove-stale-learners")
	}
	return b.String()
}

// allLearners decides whether --remove-stale-learners can help: haadm removes
// only learners automatically, since removing a voter changes quorum.
func (e *StaleMembersError) allLearners() bool {
	for _, m := range e.Members {
		if !m.IsLearner {
			return false
		}
	}
	return true
}

// NotStartedError reports a learner whose etcd never contacted the cluster
// within the wait. It unwraps to context.DeadlineExceeded so callers can tell
// a timeout from a refusal.
type NotStartedError struct {
	Member Member
	Waited time.Duration
}

func (e *NotStartedError) Error() string {
	return fmt.Sprintf("etcd member %s with peer URL %s has not started after %s: "+
		"its etcd never contacted the cluster (check the etcd static pod and its logs on that node, "+
		"and that the peer URL is reachable from the other members); to abandon the join, "+
		"remove it with `etcdctl member remove %s` or re-run haadm with --remove-stale-learners",
		e.Member.HexID(), strings.Join(e.Member.PeerURLs, ","), e.Waited.Round(time.Millisecond), e.Member.HexID())
}

func (e *NotStartedError) Unwrap() error { return context.DeadlineExceeded }

// MemberNotFoundError reports that no member has the peer URL asked for.
type MemberNotFoundError struct {
	PeerURL string
}

func (e *MemberNotFoundError) Error() string {
	return fmt.Sprintf("no etcd member has peer URL %s", e.PeerURL)
}
