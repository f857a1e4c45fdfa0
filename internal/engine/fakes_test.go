package engine

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"
	"time"

	bsync "github.com/bookingsync/bookingsync/internal/sync"
	"github.com/bookingsync/bookingsync/internal/sync/d365"
	"github.com/bookingsync/bookingsync/internal/sync/outlook"
)

// fakeBookings is an in-memory Dataverse: every write bumps versionnumber
// and the etag, and If-Match is enforced, as the real service does.
type fakeBookings struct {
	mu       gosync.Mutex
	rows     map[string]*bsync.Booking
	reads    int
	writes   int
	statuses map[string]string // name → id
	// beforeWrite runs (unlocked) before each write: a dispatcher's edit
	// racing ours.
	beforeWrite func()
}

func newFakeBookings() *fakeBookings {
	return &fakeBookings{rows: map[string]*bsync.Booking{},
		statuses: map[string]string{"canceled": "st-canceled", "committed": "st-committed"}}
}

func (f *fakeBookings) put(b bsync.Booking) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := f.rows[b.ID]; old != nil {
		b.Version = old.Version + 1
	} else if b.Version == 0 {
		b.Version = 1000
	}
	b.ETag = fmt.Sprintf(`W/"%d"`, b.Version)
	f.rows[b.ID] = &b
}

func (f *fakeBookings) get(id string) *bsync.Booking {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b := f.rows[id]; b != nil {
		c := *b
		return &c
	}
	return nil
}

func (f *fakeBookings) Booking(_ context.Context, id string) (*bsync.Booking, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	b := f.rows[id]
	if b == nil {
		return nil, d365.ErrNotFound
	}
	c := *b
	return &c, nil
}

func (f *fakeBookings) write(id, etag string, apply func(*bsync.Booking)) (*bsync.Booking, error) {
	if hook := f.beforeWrite; hook != nil {
		f.beforeWrite = nil
		hook()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.rows[id]
	if b == nil {
		return nil, d365.ErrNotFound
	}
	if etag != "" && etag != b.ETag {
		return nil, d365.ErrPreconditionFailed
	}
	f.writes++
	apply(b)
	b.Version++
	b.ETag = fmt.Sprintf(`W/"%d"`, b.Version)
	c := *b
	return &c, nil
}

func (f *fakeBookings) UpdateBookingTimes(_ context.Context, id, etag string, start, end time.Time) (*bsync.Booking, error) {
	return f.write(id, etag, func(b *bsync.Booking) { b.Start, b.End = start, end })
}

func (f *fakeBookings) SetBookingStatus(_ context.Context, id, etag, statusID string) (*bsync.Booking, error) {
	return f.write(id, etag, func(b *bsync.Booking) {
		b.StatusID = statusID
		if statusID == "st-canceled" {
			b.Status = bsync.StatusCanceled
		}
	})
}

func (f *fakeBookings) CreateBookingWithID(_ context.Context, id, resourceID, statusID, name string, start, end time.Time) (*bsync.Booking, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := f.rows[id]; old != nil {
		c := *old
		return &c, d365.ErrAlreadyExists
	}
	f.writes++
	b := &bsync.Booking{ID: id, Version: 5000, ETag: `W/"5000"`, Name: name, Start: start, End: end, Status: bsync.StatusCommitted,
		StatusID: statusID, Active: true, ResourceID: resourceID}
	f.rows[id] = b
	c := *b
	return &c, nil
}

func (f *fakeBookings) StatusID(_ context.Context, name string) (string, error) {
	if id, ok := f.statuses[name]; ok {
		return id, nil
	}
	return "", errors.New("no such status")
}

// fakeCalendars is an in-memory Outlook: transactionId makes creates
// idempotent, every write changes changeKey and etag.
type fakeCalendars struct {
	mu      gosync.Mutex
	events  map[string]*bsync.Event // id → event
	txids   map[string]string       // transactionId → event id
	seq     int
	reads   int
	writes  int
	creates int
	// failCreateAfter makes the next Create succeed at the "server" and
	// then report an error, like a timeout after Graph's 201.
	failCreateAfter bool
	// afterCreate, if set, runs once an event is created, before Create
	// returns (outside the fake's lock).
	afterCreate func(ev bsync.Event)
}

func newFakeCalendars() *fakeCalendars {
	return &fakeCalendars{events: map[string]*bsync.Event{}, txids: map[string]string{}}
}

func (f *fakeCalendars) bump(ev *bsync.Event) {
	f.seq++
	ev.ChangeKey = fmt.Sprintf("ck-%d", f.seq)
	ev.ETag = fmt.Sprintf(`W/"ck-%d"`, f.seq)
}

func (f *fakeCalendars) Get(_ context.Context, mailbox, id string) (*bsync.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	ev := f.events[id]
	if ev == nil || ev.Mailbox != mailbox {
		return nil, outlook.ErrNotFound
	}
	c := *ev
	return &c, nil
}

func (f *fakeCalendars) FindByBooking(_ context.Context, mailbox, bookingID string) ([]bsync.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	var out []bsync.Event
	for _, ev := range f.events {
		if ev.Mailbox == mailbox && ev.BookingID == bookingID {
			out = append(out, *ev)
		}
	}
	return out, nil
}

func (f *fakeCalendars) Create(_ context.Context, mailbox, bookingID, txid string, c bsync.Content) (*bsync.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.txids[txid]; ok {
		if ev := f.events[id]; ev != nil {
			cp := *ev
			return &cp, nil
		}
	}
	f.writes++
	f.creates++
	f.seq++
	ev := &bsync.Event{ID: fmt.Sprintf("event-%d", f.seq), Mailbox: mailbox, BookingID: bookingID, Content: c, Type: "singleInstance"}
	f.bump(ev)
	f.events[ev.ID] = ev
	f.txids[txid] = ev.ID
	if f.failCreateAfter {
		f.failCreateAfter = false
		return nil, errors.New("timeout awaiting response headers")
	}
	cp := *ev
	if hook := f.afterCreate; hook != nil {
		f.mu.Unlock()
		hook(cp)
		f.mu.Lock()
	}
	return &cp, nil
}

func (f *fakeCalendars) Update(_ context.Context, mailbox, id string, c bsync.Content, fields bsync.FieldSet) (*bsync.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev := f.events[id]
	if ev == nil || ev.Mailbox != mailbox {
		return nil, outlook.ErrNotFound
	}
	f.writes++
	ev.Content = bsync.ApplyFields(ev.Content, c, fields)
	f.bump(ev)
	cp := *ev
	return &cp, nil
}

func (f *fakeCalendars) Delete(_ context.Context, mailbox, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev := f.events[id]; ev != nil && ev.Mailbox == mailbox {
		f.writes++
		delete(f.events, id)
	}
	return nil
}

// userEdit changes an event as a person in Outlook would.
func (f *fakeCalendars) userEdit(id string, edit func(*bsync.Event)) *bsync.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev := f.events[id]
	edit(ev)
	f.bump(ev)
	c := *ev
	return &c
}

func (f *fakeCalendars) inMailbox(mailbox string) []bsync.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bsync.Event
	for _, ev := range f.events {
		if ev.Mailbox == mailbox {
			out = append(out, *ev)
		}
	}
	return out
}

func (f *fakeCalendars) counts() (reads, writes, creates int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads, f.writes, f.creates
}
