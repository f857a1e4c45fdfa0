package dataverse

import (
	"strings"
	"time"
)

// Observer lets an in-process caller (the bench, tests) watch the emulator
// as it works instead of polling the API: every Web API request as it
// arrives, and every row write as it is applied. Both functions are
// optional. They run synchronously on the request's goroutine, OnWrite with
// the emulator's lock held: they must return quickly and must not call the
// emulator. Seeding is not reported.
type Observer struct {
	OnRequest func(Request)
	OnWrite   func(Write)
}

// Request is one Web API request as it arrived.
type Request struct {
	Method string
	// Path is relative to the API base with its real ids, e.g.
	// /bookableresourcebookings(0b3c…); Route is its key in the stats
	// (method and path with every key spelt {id}).
	Path, Route string
	At          time.Time // wall clock, on arrival
}

// Write is one row write, as readers see it from that moment on.
type Write struct {
	Message string // Create, Update or Delete (the SDK message)
	Table   string // logical name, e.g. bookableresourcebooking
	ID      string
	// Version is the row's versionnumber after the write (0 for Delete).
	Version int64
	// Values is a copy of the row after the write (before it, for Delete),
	// by logical column name: lookups are GUID strings, date-times
	// time.Time in UTC, choices and integers int64.
	Values map[string]any
	// Webhooks is the number of webhook deliveries queued for it.
	Webhooks int
	At       time.Time // wall clock
}

// Observe installs o, replacing the previous observer; Observe(Observer{})
// removes it.
func (e *Emulator) Observe(o Observer) {
	if o.OnRequest == nil && o.OnWrite == nil {
		e.observer.Store(nil)
		return
	}
	e.observer.Store(&o)
}

func (e *Emulator) observeRequest(method, path, route string) {
	o := e.observer.Load()
	if o == nil || o.OnRequest == nil {
		return
	}
	o.OnRequest(Request{Method: method, Path: strings.TrimPrefix(path, APIPath), Route: route, At: time.Now()})
}

// observeWrite reports op once fire has queued its webhooks. Callers hold e.mu.
func (e *Emulator) observeWrite(op writeOp, webhooks int) {
	o := e.observer.Load()
	if o == nil || o.OnWrite == nil {
		return
	}
	w := Write{Message: op.message, Table: op.table.Logical, Webhooks: webhooks, At: time.Now()}
	r := op.post
	if r == nil {
		r = op.pre
	}
	if r != nil {
		w.ID = r.id
		w.Values = r.clone().vals
		if op.post != nil {
			w.Version = op.post.version
		}
	}
	o.OnWrite(w)
}
