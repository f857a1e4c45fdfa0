// Package keylock provides a mutex per key (mailbox, resource id, booking
// id). Entries are reference-counted and removed when unused, so memory stays
// flat with thousands of keys. It serialises work within one process only;
// across instances the store's compare-and-swap rows do.
package keylock

import "sync"

// Map is a set of per-key mutexes. The zero value is ready to use.
type Map struct {
	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	sync.Mutex
	refs int
}

// Lock locks key and returns its unlock.
func (m *Map) Lock(key string) (unlock func()) {
	m.mu.Lock()
	if m.keys == nil {
		m.keys = map[string]*entry{}
	}
	e := m.keys[key]
	if e == nil {
		e = &entry{}
		m.keys[key] = e
	}
	e.refs++
	m.mu.Unlock()
	e.Lock()
	return func() {
		e.Unlock()
		m.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(m.keys, key)
		}
		m.mu.Unlock()
	}
}

// Len returns how many keys are locked or waited for (for tests).
func (m *Map) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}
