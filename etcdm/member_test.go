package etcdm

import (
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestMemberOfStarted pins the one rule for a started member, on the
// shapes etcd's MemberList gives.
func TestMemberOfStarted(t *testing.T) {
	peer := []string{"https://10.250.0.12:2380"}
	client := []string{"https://10.250.0.12:2379"}
	for _, tt := range []struct {
		name string
		pb   *etcdserverpb.Member
		want bool
	}{
		{"added, never started", &etcdserverpb.Member{ID: 1, PeerURLs: peer, IsLearner: true}, false},
		{"running", &etcdserverpb.Member{ID: 2, Name: "emei", PeerURLs: peer, ClientURLs: client}, true},
		// A member that published its client URLs has run, even if the
		// list came from a member that has not learnt its name yet.
		{"client URLs only", &etcdserverpb.Member{ID: 3, PeerURLs: peer, ClientURLs: client}, true},
		{"name only", &etcdserverpb.Member{ID: 4, Name: "emei", PeerURLs: peer}, true},
	} {
		m := MemberOf(tt.pb)
		if m.Started() != tt.want {
			t.Errorf("%s: Started() = %v, want %v", tt.name, m.Started(), tt.want)
		}
		if m.ID != tt.pb.ID || m.Name != tt.pb.Name || m.IsLearner != tt.pb.IsLearner || len(m.PeerURLs) != 1 {
			t.Errorf("%s: %+v", tt.name, m)
		}
	}
	// The member owns its slices: the response may be reused.
	pb := &etcdserverpb.Member{PeerURLs: []string{"https://10.250.0.13:2380"}}
	m := MemberOf(pb)
	pb.PeerURLs[0] = "changed"
	if m.PeerURLs[0] != "https://10.250.0.13:2380" {
		t.Error("MemberOf shares the PeerURLs slice")
	}
}
