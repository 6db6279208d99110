package phases

import (
	"testing"

	"github.com/haadm/haadm/etcdm"
)

// Only learners that never started and belong to no node being promoted
// are removed, and only when the operator asked.
func TestStaleLearners(t *testing.T) {
	t.Parallel()
	members := []etcdm.Member{
		{ID: 1, Name: "shaolin", PeerURLs: []string{"https://10.250.0.11:2380"}},
		{ID: 2, PeerURLs: []string{"https://10.250.0.12:2380"}, IsLearner: true},                // emei's own join, resumable
		{ID: 3, PeerURLs: []string{"https://10.250.0.99:2380"}, IsLearner: true},                // leftover
		{ID: 4, Name: "ghost", PeerURLs: []string{"https://10.250.0.98:2380"}, IsLearner: true}, // started: never removed
		{ID: 5, PeerURLs: []string{"https://10.250.0.97:2380"}},                                 // unstarted voter: never removed
	}
	c := &Cluster{New: []NodeInfo{{Name: "emei", IP: "10.250.0.12"}}}
	if got := staleLearners(c, members); len(got) != 0 {
		t.Errorf("without --remove-stale-learners: %v", got)
	}
	c.Opts.RemoveStaleLearners = true
	got := staleLearners(c, members)
	if len(got) != 1 || got[0].ID != 3 {
		t.Errorf("stale learners %v, want only member 3", got)
	}
}
