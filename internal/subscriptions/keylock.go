package subscriptions

import "sync"

// keyLock is a mutex per key (mailbox, resource id). Entries are
// reference-counted and removed when unused, so memory stays flat with
// thousands of mailboxes.
type keyLock struct {
	mu   sync.Mutex
	keys map[string]*keyEntry
}

type keyEntry struct {
	sync.Mutex
	refs int
}

// lock locks key and returns its unlock.
func (k *keyLock) lock(key string) func() {
	k.mu.Lock()
	if k.keys == nil {
		k.keys = map[string]*keyEntry{}
	}
	e := k.keys[key]
	if e == nil {
		e = &keyEntry{}
		k.keys[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.Lock()
	return func() {
		e.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.keys, key)
		}
		k.mu.Unlock()
	}
}
