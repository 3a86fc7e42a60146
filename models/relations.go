package models

import "sync"

// relationsCache remembers what a message batch read of a (sender,
// recipient) pair: whether the sender is the recipient's contact and
// whether either blocks the other, with the recipient's relations_seq
// read under the same lock. Every transaction that makes or ends a
// contact or a block bumps the relations_seq of both users (see
// Store.lockRelations), so a later batch that locks the recipient and
// reads the same relations_seq knows the pair is as it was, and need not
// read the contacts and blocks again: its checks are then one read of
// users by primary key (a locking one on MySQL/MariaDB: see
// optimisticBatch and liteChecks). On MariaDB the whole batch costs
// mariadbd about a fifth less a message (docs/performance.md,
// BenchmarkBatchParts).
//
// A host that writes contacts or blocks itself, past the module, bumps
// relations_seq as Contact's doc asks. If it does not, a write that
// allows what an entry refused costs nothing (the batch is refused, and
// the slow path reads the pair again), but one that refuses what an
// entry allowed lets messages pass until the entry goes. A host that
// deletes a user needs nothing: the batch reads the sender's row too,
// and a sender gone is checked afresh (a recipient gone is refused).
type relationsCache struct {
	mu    sync.Mutex
	pairs map[fromTo]relation
}

// relation is a pair's entry in relationsCache.
type relation struct {
	// seq is the recipient's relations_seq when contact and blocked were
	// read.
	seq              int64
	contact, blocked bool
}

// relationsCacheSize bounds the cache; when full, it starts again empty,
// which costs each pair one full check.
const relationsCacheSize = 1 << 16

// lookup returns the entries of pairs, in their order, or nil if any is
// missing.
func (c *relationsCache) lookup(pairs []fromTo) []relation {
	c.mu.Lock()
	defer c.mu.Unlock()
	found := make([]relation, len(pairs))
	for i, p := range pairs {
		r, ok := c.pairs[p]
		if !ok {
			return nil
		}
		found[i] = r
	}
	return found
}

// store records what a full check read of pairs: each pair whose
// recipient is present, under its relations_seq.
func (c *relationsCache) store(pairs []fromTo, read checked) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pairs == nil || len(c.pairs)+len(pairs) > relationsCacheSize {
		c.pairs = make(map[fromTo]relation, len(pairs))
	}
	for _, p := range pairs {
		if seq, ok := read.seqs[p.to]; ok {
			c.pairs[p] = relation{seq: seq, contact: read.contacts[p], blocked: read.blocked[p]}
		}
	}
}

// forget drops the entries of pairs.
func (c *relationsCache) forget(pairs []fromTo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range pairs {
		delete(c.pairs, p)
	}
}
