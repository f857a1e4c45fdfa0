package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"

	"github.com/bookingsync/bookingsync/internal/jobs"
	"github.com/bookingsync/bookingsync/internal/store"
	bsync "github.com/bookingsync/bookingsync/internal/sync"
	"github.com/bookingsync/bookingsync/internal/sync/outlook"
)

// The Graph catch-up of one mailbox: a calendarView/delta round over the
// sync window, each reported change fed to the engine as if a notification
// had said it. It repairs what notifications missed (dropped, `missed`
// lifecycle events, our own downtime). The delta link is stored per mailbox
// in sync_state with the window its round was started for; delta links are
// tied to that window, so a new round starts when the window has moved by
// more than windowSlack, or when Graph no longer knows the link (410).

// windowSlack is how far the sync window may move before the catch-up
// starts a new delta round for the current window. In between, the round's
// window lags the sync window by less than this; the hourly window pass
// covers its edges.
const windowSlack = 24 * time.Hour

// deltaState is the sync_state value under store.SyncKeyDeltaToken.
type deltaState struct {
	Link string    `json:"link"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// CatchupReport is what one catch-up did.
type CatchupReport struct {
	Mailbox string `json:"mailbox"`
	// Full is set for a new round: every event in the window was reported
	// and every linked event compared. FullWhy says why.
	Full    bool   `json:"full"`
	FullWhy string `json:"full_why,omitempty"`
	// Items are the events and removals delta reported (plus, on a full
	// round, the linked events it did not report).
	Items   int `json:"items"`
	Removed int `json:"removed"`
	// Echoes cost nothing; Evaluated went to the engine.
	Echoes    int `json:"echoes"`
	Evaluated int `json:"evaluated"`
	// Repairs are evaluations that wrote; Writes their Graph/Dataverse writes.
	Repairs int `json:"repairs"`
	Writes  int `json:"writes"`
	// LeftToWindowPass are removals of linked events whose agreed times are
	// outside the sync window: the window pass removes those.
	LeftToWindowPass int `json:"left_to_window_pass,omitempty"`
	Errors           int `json:"errors,omitempty"`
}

// CatchupMailbox runs the Graph catch-up of mailbox now (the
// catchup_mailbox job calls it) and records its counts in the audit log.
func (s *Service) CatchupMailbox(ctx context.Context, mailbox, reason string) (CatchupReport, error) {
	rep, err := s.catchup(ctx, mailbox)
	after, _ := json.Marshal(rep)
	entry := store.AuditEntry{Side: store.SideOutlook, Action: "catch_up", Reason: reason, After: after, Outcome: "ok"}
	if err != nil {
		entry.Outcome, entry.Error = "failed", err.Error()
	}
	if _, aerr := s.Store.InsertAudit(context.WithoutCancel(ctx), s.Store.DB(), entry); aerr != nil {
		s.log.Warn("audit write failed", "action", "catch_up", "mailbox", mailbox, "err", aerr)
	}
	s.log.Info("mailbox catch-up", "mailbox", mailbox, "reason", reason, "full", rep.Full, "items", rep.Items,
		"repairs", rep.Repairs, "writes", rep.Writes, "err", err)
	return rep, err
}

func (s *Service) catchup(ctx context.Context, mailbox string) (CatchupReport, error) {
	rep := CatchupReport{Mailbox: mailbox}
	st := s.Store
	if mailbox == "" {
		return rep, errors.New("catch-up: empty mailbox")
	}
	enrolled, err := st.ListResources(ctx, st.DB(), store.ResourceFilter{Mailbox: mailbox, OptIn: store.OptInAllowed, ActiveOnly: true})
	if err != nil {
		return rep, err
	}
	if len(enrolled) == 0 {
		// Opted out meanwhile: its events stay as they are (D6), and a later
		// opt-in starts a new round.
		rep.FullWhy = "mailbox of no enrolled resource: skipped"
		return rep, st.DeleteSyncState(ctx, st.DB(), store.SyncKeyDeltaToken(mailbox))
	}
	now := st.Now()
	from, to := now.Add(-s.cfg.Sync.WindowPast), now.Add(s.cfg.Sync.WindowFuture)

	var state deltaState
	raw, _, err := st.GetSyncState(ctx, st.DB(), store.SyncKeyDeltaToken(mailbox))
	switch {
	case errors.Is(err, store.ErrNotFound):
		rep.FullWhy = "first round"
	case err != nil:
		return rep, err
	case json.Unmarshal([]byte(raw), &state) != nil || state.Link == "":
		rep.FullWhy = "stored delta state unreadable"
		state = deltaState{}
	case absDuration(state.From.Sub(from)) > windowSlack:
		rep.FullWhy = fmt.Sprintf("sync window moved by %s since the round began", from.Sub(state.From).Round(time.Minute))
		state = deltaState{}
	}
	cal := s.calendar()
	var d *outlook.Delta
	if state.Link != "" {
		d, err = cal.Delta(ctx, mailbox, state.From, state.To, state.Link)
		if errors.Is(err, outlook.ErrDeltaExpired) {
			rep.FullWhy = "delta link expired (410 syncStateNotFound)"
			state = deltaState{}
		} else if err != nil {
			return rep, err
		}
	}
	if state.Link == "" {
		rep.Full = true
		state = deltaState{From: from, To: to}
		if d, err = cal.Delta(ctx, mailbox, from, to, ""); err != nil {
			return rep, err
		}
	}

	var errs []error
	eval := func(id, etag string) {
		out, err := s.Engine.SyncEvent(ctx, mailbox, id, etag, "updated")
		switch {
		case err != nil:
			rep.Errors++
			errs = append(errs, fmt.Errorf("event %s: %w", id, err))
		case out.Echo:
			rep.Echoes++
		default:
			rep.Evaluated++
		}
		if out.Writes > 0 {
			rep.Repairs++
			rep.Writes += out.Writes
		}
	}
	linkOf := func(id string) (*store.Link, error) {
		l, err := st.GetLinkByEvent(ctx, st.DB(), mailbox, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return &l, err
	}

	seen := map[string]bool{}
	masters := map[string]bool{}
	for _, ev := range d.Events {
		rep.Items++
		seen[ev.ID] = true
		if ev.Type == bsync.EventOccurrence || ev.Type == bsync.EventException {
			// Occurrences say something only about a series that is linked
			// (our event turned into a series, R2): evaluate its master once.
			if ev.SeriesMasterID == "" || masters[ev.SeriesMasterID] {
				continue
			}
			masters[ev.SeriesMasterID] = true
			l, err := linkOf(ev.SeriesMasterID)
			if err != nil {
				return rep, err
			}
			if l != nil {
				seen[ev.SeriesMasterID] = true
				eval(ev.SeriesMasterID, "")
			}
			continue
		}
		// A recorded etag is an echo (no call); an unknown event is read
		// by the engine, which expands our property.
		eval(ev.ID, ev.ETag)
	}
	inWindow := func(l *store.Link) bool { return l.AgreedEnd.After(from) && l.AgreedStart.Before(to) }
	for _, id := range d.Removed {
		rep.Items++
		rep.Removed++
		if seen[id] {
			continue // reported twice in one round (an occurrence and its series)
		}
		seen[id] = true
		l, err := linkOf(id)
		if err != nil {
			return rep, err
		}
		if l == nil || l.Detached {
			continue
		}
		if !inWindow(l) {
			rep.LeftToWindowPass++
			continue
		}
		// Delta reports an event that moved out of its window as removed,
		// exactly like a deleted one: let the engine read it (404 = deleted)
		// rather than telling it "deleted", which would cancel the booking
		// of an appointment that was only moved.
		eval(id, "")
	}
	if rep.Full {
		// A new round reports no removals: a linked event deleted while we
		// had no valid link (or before the first round) is found by its
		// absence.
		links, err := st.ListLinksByMailbox(ctx, st.DB(), mailbox)
		if err != nil {
			return rep, err
		}
		for i := range links {
			l := &links[i]
			if seen[l.EventID] || l.Detached || l.Pending() || !inWindow(l) {
				continue
			}
			rep.Items++
			eval(l.EventID, "")
		}
	}
	if len(errs) > 0 {
		// Keep the previous link: the next run reports these again.
		return rep, errors.Join(errs...)
	}
	state.Link = d.DeltaLink
	val, _ := json.Marshal(state)
	if err := st.SetSyncState(ctx, st.DB(), store.SyncKeyDeltaToken(mailbox), string(val)); err != nil {
		return rep, err
	}
	return rep, st.SetSyncState(ctx, st.DB(), store.SyncKeyMailboxCatchup(mailbox), now.UTC().Format(time.RFC3339Nano))
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// lastCatchup is when mailbox's last successful catch-up finished (zero if
// never).
func (s *Service) lastCatchup(ctx context.Context, mailbox string) (time.Time, error) {
	raw, _, err := s.Store.GetSyncState(ctx, s.Store.DB(), store.SyncKeyMailboxCatchup(mailbox))
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	t, _ := time.Parse(time.RFC3339Nano, raw)
	return t, nil
}

// CatchupDueArgs looks for mailboxes whose catch-up is due and enqueues
// catchup_mailbox jobs for them (periodic). AfterStart is the first run of
// this process: mailboxes not heard of for sync.catchup_after_downtime are
// caught up too.
type CatchupDueArgs struct {
	AfterStart bool `json:"after_start,omitempty"`
}

func (CatchupDueArgs) Kind() string { return "catchup_due" }
func (CatchupDueArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, UniqueOpts: jobs.UniqueWhileQueued(true)}
}

// catchupDueEvery is the period of the catchup_due job: a few minutes, so
// each mailbox's jittered due time is kept to within that.
func (s *Service) catchupDueEvery() time.Duration {
	every := 5 * time.Minute
	if q := s.cfg.Sync.CatchupInterval / 4; q > 0 && q < every {
		every = max(q, 15*time.Second)
	}
	return every
}

// catchupJitter spreads mailboxes' periodic catch-ups over a quarter of the
// interval, the same offset for a mailbox every time (a hash of its id), so
// they do not all run at once after a deployment or a mass opt-in.
func catchupJitter(mailbox string, interval time.Duration) time.Duration {
	span := interval / 4
	if span <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(mailbox)))
	return time.Duration(h.Sum64() % uint64(span))
}

// CatchupDue enqueues catch-ups for the enrolled mailboxes that need one:
// the last catch-up is older than sync.catchup_interval plus the mailbox's
// jitter (never caught up counts from the subscription's creation); with
// afterStart also those whose last notification, last catch-up and
// subscription creation are all older than sync.catchup_after_downtime (we
// may have been down meanwhile). It returns how many it enqueued.
func (s *Service) CatchupDue(ctx context.Context, afterStart bool) (int, error) {
	st := s.Store
	res, err := st.ListResources(ctx, st.DB(), store.ResourceFilter{OptIn: store.OptInAllowed, ActiveOnly: true})
	if err != nil {
		return 0, err
	}
	now := st.Now()
	interval := s.cfg.Sync.CatchupInterval
	if interval <= 0 {
		interval = 6 * time.Hour
	}
	n := 0
	done := map[string]bool{}
	var errs []error
	for _, r := range res {
		mb := r.Mailbox
		if mb == "" || done[mb] {
			continue
		}
		done[mb] = true
		subs, err := st.ListSubscriptionsByMailbox(ctx, st.DB(), mb)
		if err != nil {
			return n, err
		}
		if len(subs) == 0 {
			continue // not subscribed (yet): nothing was missed; enrollment will subscribe
		}
		last, err := s.lastCatchup(ctx, mb)
		if err != nil {
			return n, err
		}
		// heard: the last notification or catch-up; a subscription created
		// since then (in this run, say) cannot have missed anything before.
		var heard time.Time
		created := subs[0].CreatedAt
		for _, sub := range subs {
			if sub.LastNotificationAt != nil && sub.LastNotificationAt.After(heard) {
				heard = *sub.LastNotificationAt
			}
			if sub.CreatedAt.After(heard) {
				heard = sub.CreatedAt
			}
			if sub.CreatedAt.Before(created) {
				created = sub.CreatedAt
			}
		}
		if last.After(heard) {
			heard = last
		}
		reason := ""
		since := last
		if since.IsZero() {
			since = created
		}
		switch {
		case afterStart && now.Sub(heard) > s.cfg.Sync.CatchupAfterDowntime:
			reason = "after downtime: nothing heard from the mailbox since " + heard.UTC().Format(time.RFC3339)
		case now.Sub(since) > interval+catchupJitter(mb, interval):
			reason = "periodic"
		default:
			continue
		}
		if _, err := s.Queue.Insert(ctx, jobs.CatchupMailboxArgs{Mailbox: mb, Reason: reason}, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// catchupJobs registers the catchup_due worker.
func (s *Service) catchupJobs(w *river.Workers) error {
	return river.AddWorkerSafely(w, river.WorkFunc(func(ctx context.Context, job *river.Job[CatchupDueArgs]) error {
		n, err := s.CatchupDue(ctx, job.Args.AfterStart)
		if n > 0 {
			s.log.Info("catch-ups scheduled", "count", n, "after_start", job.Args.AfterStart)
		}
		return err
	}))
}

// catchupPeriodicJobs schedules catchup_due. Its first run (on start, or
// when this instance becomes the leader) is the after-downtime check.
func (s *Service) catchupPeriodicJobs() []*river.PeriodicJob {
	var started atomic.Bool
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(s.catchupDueEvery()),
			func() (river.JobArgs, *river.InsertOpts) {
				return CatchupDueArgs{AfterStart: !started.Swap(true)}, nil
			}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}

// calendar reads the Outlook side with the engine's property id (reads
// only: the time zone the engine writes in does not matter).
func (s *Service) calendar() *outlook.Calendar {
	return outlook.New(s.Graph, outlook.Options{PropertyID: s.cfg.Graph.ExtendedPropertyID})
}
