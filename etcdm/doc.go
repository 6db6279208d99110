// Package etcdm manages the membership of the stacked etcd cluster the way
// kubeadm does since learners became the default: a new member joins as a
// non-voting learner, is promoted only once it has caught up, and nothing here
// ever changes the quorum of a cluster whose voters are not all healthy.
//
// Every operation is idempotent, because haadm is re-run after a failure: an
// existing learner is reused rather than added twice, promoting a voter is
// success, and removing a member that is already gone is not an error.
//
// The client passed in should point at voters: learners refuse
// linearizable requests such as MemberList.
package etcdm
