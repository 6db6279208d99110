package etcdm

import (
	"fmt"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// RestoreRevisionBump is how far a restore moves the store's revision
// forward, and the revisions up to it are marked compacted: the
// apiservers' and controllers' watch caches hold revisions newer than the
// snapshot's, and would otherwise silently miss the changes made after the
// restore (what Kubernetes' documentation asks of etcdutl restores).
const RestoreRevisionBump = 1_000_000_000

// RestoreSnapshot makes dataDir (which must not exist) the data directory
// of a one-member etcd cluster holding the snapshot at snapPath, as
// `etcdutl snapshot restore` does: the member is called name and
// advertises peerURL, as the node's etcd manifest says, so its etcd starts
// on it unchanged. The snapshot's sha256 trailer is checked.
func RestoreSnapshot(snapPath, dataDir, name, peerURL string) error {
	err := snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath:        snapPath,
		Name:                name,
		OutputDataDir:       dataDir,
		PeerURLs:            []string{peerURL},
		InitialCluster:      name + "=" + peerURL,
		InitialClusterToken: "etcd-cluster", // etcd's default, which kubeadm keeps
		RevisionBump:        RestoreRevisionBump,
		MarkCompacted:       true,
	})
	if err != nil {
		return fmt.Errorf("restoring etcd snapshot %s for member %s (%s): %w", snapPath, name, peerURL, err)
	}
	return nil
}
