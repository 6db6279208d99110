package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"testing"
)

func TestKeyPool(t *testing.T) {
	t.Parallel()
	var p KeyPool
	p.Fill(t.Context(), RSA2048, 3)
	p.Fill(t.Context(), ECDSAP256, 5) // only the first Fill counts
	seen := map[string]bool{}
	for i := range 4 { // the fourth is made when asked
		k, err := p.NewKey(RSA2048)
		if err != nil {
			t.Fatal(err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok || rk.N.BitLen() != 2048 {
			t.Fatalf("key %d: %T, want RSA-2048", i, k)
		}
		if seen[rk.N.String()] {
			t.Fatalf("key %d handed out twice", i)
		}
		seen[rk.N.String()] = true
	}
	if k, err := p.NewKey(ECDSAP256); err != nil {
		t.Fatal(err)
	} else if _, ok := k.(*ecdsa.PrivateKey); !ok {
		t.Errorf("another algorithm than the pool's: %T", k)
	}
	if _, err := p.NewKey("DSA-1024"); err == nil {
		t.Error("an unsupported algorithm is not refused")
	}

	// Stopped, nil or never filled: keys are made when asked.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stopped KeyPool
	stopped.Fill(ctx, ECDSAP256, 10)
	var none *KeyPool
	for _, q := range []*KeyPool{&stopped, none, {}} {
		if k, err := q.NewKey(ECDSAP256); err != nil || k == nil {
			t.Errorf("NewKey: %v, %v", k, err)
		}
	}
}
