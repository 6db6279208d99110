// Package phases holds the steps of a promotion, one file per phase, and the
// runner that drives them. A phase reads the cluster once and returns its
// plan, the Work left to do; the runner prints plans (dry run) or applies
// them. Applying is safe to repeat, which is how users recover from a
// promotion that stopped half way: they run it again.
package phases

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Phase is one named step of `haadm promote`, also runnable alone as
// `haadm phase <name>`.
type Phase interface {
	Name() string
	Description() string
	// Uses says which options beyond --nodes the phase reads.
	Uses() Uses
	// Plan reads the cluster, changes nothing, and returns what is left
	// to do: empty Work when the phase is done.
	Plan(ctx context.Context, c *Cluster) (*Work, error)
}

// Uses is a set of option groups a phase reads.
type Uses uint8

const (
	// UsesEndpoint: the load-balancer layout, the endpoint and the SANs.
	UsesEndpoint Uses = 1 << iota
	// UsesEtcd: etcd membership options (--remove-stale-learners).
	UsesEtcd
)

// dependent is a phase whose plan changes when an earlier one applies
// work: the runner plans it again before applying it. Other phases read
// state no earlier phase writes, so their first plan stays valid.
type dependent interface {
	// DependsOn names the earlier phases whose changes it must see.
	DependsOn() []string
}

// follower is a phase that may start on a node as soon as the phase
// right before it, Follows(), has passed its Gate step there, while that
// phase goes on with the next node: a new master's control plane starts
// while the next node's etcd member joins. Its work must be PerNode and
// planned before the phase it follows changes anything.
type follower interface {
	Follows() string
}

// All returns the phases of a promotion in order: the endpoint's name in
// /etc/hosts (when asked) before anything is pointed at it; certificates and the
// control plane's host files before the etcd members, since everything a
// new master needs to start must be there before etcd grows; etcd before the apiservers that need a local
// member; every apiserver before the load balancer sends traffic to it and
// before kubelets and cluster objects are pointed at it.
func All() []Phase {
	return []Phase{EtcHosts{}, Certs{}, HostFiles{}, Etcd{}, ControlPlane{}, Mark{}, LB{}, Kubelet{}, ClusterConfig{}}
}

// Names lists the phase names, for help texts and --skip-phases; preflight
// and backup are steps of every run, not phases.
func Names() []string {
	var n []string
	for _, p := range All() {
		n = append(n, p.Name())
	}
	return n
}

// Find returns the phase called name.
func Find(name string) (Phase, error) {
	for _, p := range All() {
		if p.Name() == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no phase %q; phases are: %s", name, strings.Join(Names(), ", "))
}

// Select returns every phase but those named in skip, which must all be
// phases (or "backup", the run's backup step, which the caller handles).
func Select(skip []string) ([]Phase, error) {
	var unknown []string
	for _, s := range skip {
		if _, err := Find(s); err != nil && s != "backup" {
			unknown = append(unknown, s)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("--skip-phases %s: no such phase; phases are: %s", strings.Join(unknown, ","), strings.Join(append(Names(), "backup"), ", "))
	}
	var list []Phase
	for _, p := range All() {
		if !slices.Contains(skip, p.Name()) {
			list = append(list, p)
		}
	}
	return list, nil
}

// UsesOf is what a list of phases reads together.
func UsesOf(list []Phase) Uses {
	var u Uses
	for _, p := range list {
		u |= p.Uses()
	}
	return u
}
