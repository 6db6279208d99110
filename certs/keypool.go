package certs

import (
	"context"
	"crypto"
	"runtime"
	"sync"
	"sync/atomic"
)

// KeyPool makes private keys ahead of need, in the background: a promote
// needs about ten RSA keys per new master, a second or two of CPU that
// would otherwise come after preflight, which spends the same time
// waiting on the network. The zero KeyPool, and a nil one, make every key
// when asked.
type KeyPool struct {
	mu   sync.Mutex
	alg  string
	keys chan crypto.Signer // closed once the makers are done
}

// Fill starts making n keys of alg on every CPU; ctx's end stops it. Only
// the first Fill of a pool counts.
func (p *KeyPool) Fill(ctx context.Context, alg string, n int) {
	if p == nil || n <= 0 {
		return
	}
	ch := make(chan crypto.Signer, n) // makers never block on a send
	p.mu.Lock()
	if p.keys != nil {
		p.mu.Unlock()
		return
	}
	p.alg, p.keys = alg, ch
	p.mu.Unlock()
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for ctx.Err() == nil && left.Add(-1) >= 0 {
				k, err := NewKey(alg)
				if err != nil {
					return // NewKey says why to whoever asks next
				}
				ch <- k
			}
		})
	}
	go func() { wg.Wait(); close(ch) }()
}

// NewKey is a key of alg: one the pool has made or is making (waiting for
// it costs less than making another beside it), else a new one. Each key
// is handed out once.
func (p *KeyPool) NewKey(alg string) (crypto.Signer, error) {
	if p != nil {
		p.mu.Lock()
		ch, made := p.keys, p.alg
		p.mu.Unlock()
		if ch != nil && made == alg {
			if k, ok := <-ch; ok {
				return k, nil
			}
		}
	}
	return NewKey(alg)
}
