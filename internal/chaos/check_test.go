package chaos

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/store"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
	"github.com/bookingsync/bookingsync/internal/sync/d365"
	"github.com/bookingsync/bookingsync/internal/sync/outlook"
)

// finalState is both sides as read through the APIs after the run, with
// the store's links and audit log (read after the service stopped).
type finalState struct {
	now      time.Time
	optedIn  map[string]bool   // resource → Allowed
	names    map[string]string // resource → name
	bookings map[string]*bsync.Booking
	events   map[string][]bsync.Event // mailbox → events carrying our property
	links    map[string]store.Link    // booking → link
	audit    []store.AuditEntry       // oldest first
}

// readFinal reads the final state with faults off.
func (h *harness) readFinal(ctx context.Context, techs []tech, st *store.Store) (*finalState, error) {
	fs := &finalState{now: h.emu.Tenant().Now(), optedIn: map[string]bool{}, names: map[string]string{},
		bookings: map[string]*bsync.Booking{}, events: map[string][]bsync.Event{}, links: map[string]store.Link{}}
	for _, t := range techs {
		var r dataverse.BookableResource
		if err := h.dv.Get(ctx, dataverse.SetResources, t.resource, dataverse.Query{}, &r); err != nil {
			return nil, fmt.Errorf("read resource %s: %w", t.resource, err)
		}
		v, ok, err := r.Choice(h.cfg.Dataverse.OptInColumn)
		if err != nil {
			return nil, err
		}
		fs.optedIn[t.resource] = ok && v == h.cfg.Dataverse.OptInAllowed
		fs.names[t.resource] = r.Name
	}
	src := d365.New(h.dv, d365.Options{OrgURL: h.cfg.Dataverse.OrgURL})
	all, err := src.BookingsInWindow(ctx, nil, fs.now.AddDate(-2, 0, 0), fs.now.AddDate(2, 0, 0))
	if err != nil {
		return nil, err
	}
	for i := range all {
		b := all[i]
		fs.bookings[strings.ToLower(b.ID)] = &b
	}
	cal := outlook.New(h.gc, outlook.Options{})
	for _, t := range techs {
		evs, err := h.gc.CalendarView(ctx, t.mailbox, fs.now.AddDate(-1, 0, 0), fs.now.AddDate(2, 0, 0))
		if err != nil {
			return nil, fmt.Errorf("calendar of %s: %w", t.mailbox, err)
		}
		for _, e := range evs {
			full, err := cal.Get(ctx, t.mailbox, e.ID)
			if errors.Is(err, outlook.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if full.BookingID != "" {
				full.BookingID = strings.ToLower(full.BookingID)
				fs.events[t.mailbox] = append(fs.events[t.mailbox], *full)
			}
		}
	}
	links, err := st.ListLinks(ctx, st.DB())
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		fs.links[strings.ToLower(l.BookingID)] = l
	}
	ents, err := st.QueryAudit(ctx, st.DB(), store.AuditFilter{Limit: 1 << 30})
	if err != nil {
		return nil, err
	}
	for i := len(ents) - 1; i >= 0; i-- {
		fs.audit = append(fs.audit, ents[i])
	}
	return fs, nil
}

// violation is one broken invariant, with what explains it.
type violation struct {
	invariant string // "1 one event", "2 no orphan", "3 no duplicate", "4 outlook move"
	booking   string
	what      string
}

// checkResult holds the violations and the counts of the check.
type checkResult struct {
	violations []violation
	notes      []string
	expected   int // bookings that must have an event
	ourEvents  int // events carrying our property in opted-in mailboxes
	moves      int // Outlook moves whose outcome was checked
	movesKept  int // … that are in the booking
	movesByPol int // … resolved by the conflict policy (audit entry)
	leftovers  int // events of ours in opted-out mailboxes (rule D6 keeps them)
}

var conflictReason = regexp.MustCompile(`^C\d+[a-z]?:`)

// check verifies the invariants of issue 7's chaos run.
func (h *harness) check(fs *finalState, techs []tech, ops []opRecord) (*checkResult, error) {
	res := &checkResult{}
	policy := bsync.PolicyFromConfig(h.cfg.Sync)
	renderer, err := bsync.NewRenderer(h.cfg.Sync.Templates, h.cfg.Dataverse.OrgURL)
	if err != nil {
		return nil, err
	}
	mailboxOf := map[string]string{}
	resourceOf := map[string]string{}
	for _, t := range techs {
		mailboxOf[t.resource], resourceOf[t.mailbox] = t.mailbox, t.resource
	}
	live := func(b *bsync.Booking) bool {
		return b != nil && b.Active && b.Status != bsync.StatusCanceled && bsync.InWindow(*b, fs.now, policy)
	}
	add := func(inv, booking, format string, args ...any) {
		res.violations = append(res.violations, violation{invariant: inv, booking: booking, what: fmt.Sprintf(format, args...)})
	}

	// 1. Every in-window, non-canceled, active booking of an opted-in
	// resource has exactly one event, in the right mailbox, with the
	// right times and content.
	ids := make([]string, 0, len(fs.bookings))
	for id := range fs.bookings {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		b := fs.bookings[id]
		res0 := strings.ToLower(b.ResourceID)
		mb, isTech := mailboxOf[res0]
		if !isTech || !fs.optedIn[res0] || !live(b) {
			continue
		}
		res.expected++
		var mine []bsync.Event
		for _, e := range fs.events[mb] {
			if e.BookingID == id {
				mine = append(mine, e)
			}
		}
		if len(mine) != 1 {
			where := ""
			for m, evs := range fs.events {
				for _, e := range evs {
					if e.BookingID == id && m != mb {
						where += " (one in mailbox " + short(m) + ")"
					}
				}
			}
			add("1 exactly one event", id, "booking %q of %s (%s–%s) has %d events in its mailbox%s",
				b.Name, fs.names[res0], b.Start.Format(time.RFC3339), b.End.Format(time.RFC3339), len(mine), where)
			continue
		}
		want, err := renderer.Render(*b, bsync.Resource{ID: res0, Name: fs.names[res0], Mailbox: mb, OptedIn: true}, policy)
		if err != nil {
			return nil, err
		}
		if d := bsync.Diff(want, mine[0].Content); d != 0 {
			add("1 right times and content", id, "event %s differs in %s: event %s, booking %s", short(mine[0].ID), d,
				contentString(mine[0].Content, d), contentString(want, d))
		}
	}

	// 2. Every event carrying our property in the mailbox of an opted-in
	// resource has a live, in-window booking assigned to that resource.
	// 3. No duplicates anywhere (per mailbox; across opted-in mailboxes
	// 2 finds them).
	for _, t := range techs {
		seen := map[string]int{}
		for _, e := range fs.events[t.mailbox] {
			seen[e.BookingID]++
			if !fs.optedIn[t.resource] {
				res.leftovers++
				continue
			}
			res.ourEvents++
			b := fs.bookings[e.BookingID]
			switch {
			case b == nil:
				add("2 no orphan event", e.BookingID, "event %s in %s's mailbox (%s) carries a booking that does not exist", short(e.ID), t.name, e.Content.Start.Format(time.RFC3339))
			case !live(b):
				add("2 no orphan event", e.BookingID, "event %s in %s's mailbox: its booking is not live (active=%v status=%d %s–%s)", short(e.ID), t.name, b.Active, b.Status, b.Start.Format(time.RFC3339), b.End.Format(time.RFC3339))
			case strings.ToLower(b.ResourceID) != t.resource:
				add("2 no orphan event", e.BookingID, "event %s in %s's mailbox: its booking is assigned to %s", short(e.ID), t.name, fs.names[strings.ToLower(b.ResourceID)])
			}
		}
		for id, n := range seen {
			if n > 1 {
				add("3 no duplicates", id, "%d events of booking %s in %s's mailbox (opted in: %v)", n, id, t.name, fs.optedIn[t.resource])
			}
		}
	}

	// 4. Every Outlook move of a linked event is in the booking, or was
	// resolved by the conflict policy with an audit entry. A move counts
	// when it was the last operation that set the booking's times or
	// existence, its resource stayed opted in since before the move, and
	// the booking is still live in that mailbox.
	lastTimeOp := map[string]opRecord{}
	lastToggle := map[string]int{} // resource → seq of its last opt-in/out
	for _, o := range ops {
		switch o.kind {
		case "opt_in", "opt_out":
			lastToggle[o.resource] = o.seq
		case "retitle_event", "edit_work_order", "outlook_create_event":
		default:
			if o.booking != "" && !errors.Is(o.err, errNoTarget) {
				lastTimeOp[o.booking] = o
			}
		}
	}
	for _, id := range ids {
		o, ok := lastTimeOp[id]
		if !ok || (o.kind != "move_event" && o.kind != "resize_event") {
			continue
		}
		if o.err != nil {
			res.notes = append(res.notes, fmt.Sprintf("move %s not checked: its outcome is unknown (%v)", o, o.err))
			continue
		}
		b := fs.bookings[id]
		r := resourceOf[o.mailbox]
		if !live(b) || strings.ToLower(b.ResourceID) != r || !fs.optedIn[r] || lastToggle[r] > o.seq || !wasOptedIn(ops, r, o.seq) {
			continue
		}
		res.moves++
		if sameMinute(b.Start, o.start) && sameMinute(b.End, o.end) {
			res.movesKept++
			continue
		}
		trail := auditOf(fs.audit, id)
		resolved := false
		for _, a := range fs.audit {
			if a.BookingID == id && !a.At.Before(o.at.Add(-time.Second)) &&
				(a.Action == "conflict" || a.Action == "conflict_resolved" || conflictReason.MatchString(a.Reason)) {
				resolved = true
			}
		}
		if resolved {
			res.movesByPol++
			continue
		}
		add("4 outlook move", id, "Outlook %s (op #%d at %s) to %s–%s is not in the booking (%s–%s) and no conflict was recorded; link event %s; audit:\n%s",
			o.kind, o.seq, o.at.Format("15:04:05.000"), o.start.Format(time.RFC3339), o.end.Format(time.RFC3339),
			b.Start.Format(time.RFC3339), b.End.Format(time.RFC3339), short(fs.links[id].EventID), trail)
	}
	return res, nil
}

// wasOptedIn reports whether the run's last opt-in/out of resource before
// op seq was an opt-in.
func wasOptedIn(ops []opRecord, resource string, seq int) bool {
	in := false
	for _, o := range ops {
		if o.seq >= seq {
			break
		}
		if o.resource == resource && o.err == nil {
			switch o.kind {
			case "opt_in":
				in = true
			case "opt_out":
				in = false
			}
		}
	}
	return in
}

func sameMinute(a, b time.Time) bool {
	return a.UTC().Truncate(time.Minute).Equal(b.UTC().Truncate(time.Minute))
}

func contentString(c bsync.Content, f bsync.FieldSet) string {
	var parts []string
	if f.Has(bsync.FieldSubject) {
		parts = append(parts, fmt.Sprintf("subject=%q", c.Subject))
	}
	if f.Has(bsync.FieldBody) {
		parts = append(parts, fmt.Sprintf("body=%q", bsync.VisibleText(c.Body)))
	}
	if f.Has(bsync.FieldLocation) {
		parts = append(parts, fmt.Sprintf("location=%q", c.Location))
	}
	if f.Has(bsync.FieldStart) {
		parts = append(parts, "start="+c.Start.UTC().Format(time.RFC3339))
	}
	if f.Has(bsync.FieldEnd) {
		parts = append(parts, "end="+c.End.UTC().Format(time.RFC3339))
	}
	if f.Has(bsync.FieldShowAs) {
		parts = append(parts, "showAs="+c.ShowAs)
	}
	return strings.Join(parts, " ")
}

// auditOf is the booking's audit trail, one line per entry.
func auditOf(audit []store.AuditEntry, booking string) string {
	var b strings.Builder
	for _, a := range audit {
		if strings.EqualFold(a.BookingID, booking) {
			fmt.Fprintf(&b, "    %s %-9s %-20s event=%s %s → %s %s\n", a.At.Format("15:04:05.000"), a.Side, a.Action, short(a.EventID), a.Reason, a.Outcome, a.Error)
		}
	}
	if b.Len() == 0 {
		return "    (no audit entries)\n"
	}
	return b.String()
}

// opsOf lists the run's operations on a booking.
func opsOf(ops []opRecord, booking string) string {
	var b strings.Builder
	for _, o := range ops {
		if o.booking == booking {
			b.WriteString("    " + o.String() + "\n")
		}
	}
	return b.String()
}
