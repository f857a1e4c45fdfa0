package graph

import (
	"strings"
	"time"
)

// Observer lets an in-process caller (the bench, tests) watch the emulator
// as it works instead of polling the API: every API request as it arrives,
// and every change to an event as it is applied. Both functions are
// optional. They run synchronously on the request's goroutine, OnWrite with
// the emulator's lock held: they must return quickly and must not call the
// emulator. Requests made by an observer are never reported to it, because
// it makes none.
type Observer struct {
	OnRequest func(Request)
	OnWrite   func(Write)
}

// Request is one API request as routed; steps of a $batch are reported on
// their own (and the batch once, as POST /$batch), as in the stats.
type Request struct {
	Method string
	// Path is the path relative to /graph/v1.0 with its real ids, e.g.
	// /users/{id}/events/AAkAL…; Route is its key in the stats
	// (every path parameter spelt {id}).
	Path, Route string
	At          time.Time // wall clock, on arrival
}

// Write is one change to an event, as Graph shows it from that moment on.
type Write struct {
	// ChangeType is created, updated or deleted, as in the notification.
	ChangeType string
	// Source is "api" for a POST, PATCH or DELETE through the API, and
	// "outlook" for Outlook's own modification right after a create.
	Source  string
	Mailbox string // the user's id
	EventID string // immutable id (bookingsync asks for immutable ids)
	ETag    string // @odata.etag after the change (the notification's resourceData.@odata.etag)
	Subject string
	Start   time.Time // UTC
	End     time.Time // UTC
	ShowAs  string
	// Extended holds the event's single-value extended properties, value
	// by property id as the client wrote it (for a deletion: the deleted
	// event's).
	Extended map[string]string
	// Notifications is the number of change notifications queued for it.
	Notifications int
	At            time.Time // wall clock
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
	o.OnRequest(Request{Method: method, Path: strings.TrimPrefix(path, basePath), Route: route, At: time.Now()})
}

// observeWriteLocked reports a change after notifyLocked queued its
// notifications. Callers hold e.mu.
func (e *Emulator) observeWriteLocked(mb *mailbox, changeType, source string, in instance) {
	o := e.observer.Load()
	if o == nil || o.OnWrite == nil {
		return
	}
	w := Write{
		ChangeType: changeType, Source: source, Mailbox: mb.user.ID, EventID: in.ref(mb).id(true),
		ETag: etagFor(changeKeyFor(mb.id, in.ev.seq)), Subject: in.ev.subject,
		Start: in.start.UTC(), End: in.end.UTC(), ShowAs: in.ev.showAs, At: time.Now(),
	}
	ext := in.ev.ext
	if in.master != nil && len(ext) == 0 {
		ext = in.master.ext
	}
	if len(ext) > 0 {
		w.Extended = make(map[string]string, len(ext))
		for _, p := range ext {
			w.Extended[p.ID] = p.Value
		}
	}
	now := e.t.Now()
	for _, s := range e.subsByMb[mb.id] {
		if s.changes[changeType] && now.Before(s.expiration) {
			w.Notifications++
		}
	}
	o.OnWrite(w)
}
