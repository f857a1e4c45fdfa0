package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrIntakeStopped is returned by Submit when the Intake is not running.
var ErrIntakeStopped = errors.New("store: intake is not running")

// Defaults for IntakeConfig.
const (
	IntakeMaxBatchDefault      = 2000
	IntakeMaxWaitDefault       = 2 * time.Millisecond
	IntakeQueueSizeDefault     = 4096
	IntakeCommitTimeoutDefault = 30 * time.Second
	IntakeOpsMaxWaitDefault    = 10 * time.Millisecond
)

// intakeBusyWindow: the committer counts as busy (see OpsMaxWait) while a
// submission arrived within this long.
const intakeBusyWindow = 100 * time.Millisecond

// IntakeConfig configures an Intake.
type IntakeConfig struct {
	// Stored, if set, is called after each commit that stored new rows,
	// e.g. to wake the inbox processor; not while a processor takes the
	// new rows through an InboxHandOff (its Deliver is told instead). It
	// must not block.
	Stored func()
	// BeforeCommit, if set, runs inside each group commit that stored new
	// rows, with their ids, after the insert; an error fails the whole
	// commit. Nothing in production needs it (the inbox is the queue); tests
	// use it to hold a commit while submitters queue behind it.
	BeforeCommit func(ctx context.Context, tx *sql.Tx, ids []int64) error
	Logger       *slog.Logger
	// MaxBatch bounds the notifications in one commit. A single Submit is
	// never split, so one larger than MaxBatch commits alone.
	MaxBatch int
	// MaxWait is how long the committer lingers for more submissions after
	// the first one of a batch. Under load batches also form while the
	// previous commit is in flight, so this only needs to be short.
	MaxWait time.Duration
	// OpsMaxWait is how long a processed-mark or claim, arriving while no
	// submission is waiting but submissions arrived recently, waits for one
	// to share its commit (it never delays a submission). Without it, at a
	// steady trickle of webhooks every intake commit is followed by one of
	// the processor's, doubling the fsyncs that acknowledgements queue
	// behind. When submissions are rare it commits at once. Negative: never
	// wait.
	OpsMaxWait time.Duration
	// QueueSize bounds submissions waiting for the committer.
	QueueSize int
	// CommitTimeout bounds one group commit. It does not depend on any
	// caller's context: one caller giving up must not abort the others' commit.
	CommitTimeout time.Duration
}

// Result is what one Submit stored.
type Result struct {
	// IDs is aligned with the submitted batch: the new inbox row id, or 0
	// for a duplicate.
	IDs        []int64
	Inserted   int
	Duplicates int
}

// Intake stores notifications durably with group commit: concurrent Submit
// calls are coalesced into one transaction on the inbox, which inserts the
// rows (ignoring duplicates), so that one fsync covers many HTTP requests.
// Each Submit returns only after its transaction committed, or with its
// error. The inbox is the queue: no job is enqueued; Stored wakes the
// processor. Subscriptions are marked as heard from (at most every
// intakeTouchInterval per subscription) after the commit, off its path, in
// the main database.
//
// While it runs, MarkNotificationsProcessed and ClaimNotifications on the
// store's pool are applied by the same committer: on SQLite the processing
// side then never takes the inbox's writer connection for them, and on both
// backends one commit covers many batches' claims and marks.
type Intake struct {
	store *Store
	cfg   IntakeConfig
	log   *slog.Logger

	reqs    chan *intakeRequest
	marks   chan *markRequest
	touches chan []string // subscription ids for the toucher
	pending atomic.Int64  // queued, not yet taken by the committer
	// outstanding counts submissions queued or in the batch being built.
	// When all of them are in the batch nobody can join it, so the
	// committer commits without lingering for MaxWait.
	outstanding atomic.Int64
	// lastSubmit is when the latest submission was queued (UnixNano).
	lastSubmit atomic.Int64

	// touched is when the committer last set each subscription's
	// last_notification_at (committer goroutine only).
	touched map[string]time.Time

	mu        sync.Mutex
	running   bool
	stop      chan struct{}
	done      chan struct{}
	touchDone chan struct{}
}

type intakeRequest struct {
	ns    []Notification
	state atomic.Int32 // intakeQueued → intakeTaken | intakeAbandoned
	done  chan intakeReply
}

const (
	intakeQueued int32 = iota
	intakeTaken
	intakeAbandoned
)

type intakeReply struct {
	res Result
	err error
}

// markRequest is a MarkNotificationsProcessed (owner == "") or a
// ClaimNotifications (owner != "") routed to the committer.
type markRequest struct {
	ids  []int64
	at   time.Time
	done chan markReply

	owner string
	limit int
	lease time.Duration
}

type markReply struct {
	n       int64
	claimed []Notification
	err     error
}

// NewIntake returns a stopped Intake writing to s.
func NewIntake(s *Store, cfg IntakeConfig) (*Intake, error) {
	if cfg.Logger == nil {
		cfg.Logger = s.logger
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = IntakeMaxBatchDefault
	}
	if cfg.MaxWait < 0 {
		cfg.MaxWait = 0
	} else if cfg.MaxWait == 0 {
		cfg.MaxWait = IntakeMaxWaitDefault
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = IntakeQueueSizeDefault
	}
	if cfg.OpsMaxWait < 0 {
		cfg.OpsMaxWait = 0
	} else if cfg.OpsMaxWait == 0 {
		cfg.OpsMaxWait = IntakeOpsMaxWaitDefault
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = IntakeCommitTimeoutDefault
	}
	return &Intake{store: s, cfg: cfg, log: cfg.Logger, reqs: make(chan *intakeRequest, cfg.QueueSize),
		marks: make(chan *markRequest, cfg.QueueSize), touches: make(chan []string, intakeTouchQueue),
		touched: map[string]time.Time{}}, nil
}

// Start launches the committer. Starting a running Intake is a no-op.
// ctx carries values for logging only; Stop ends the committer.
func (in *Intake) Start(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.running {
		return nil
	}
	in.running = true
	in.stop = make(chan struct{})
	in.done = make(chan struct{})
	in.touchDone = make(chan struct{})
	ctx = context.WithoutCancel(ctx)
	go in.toucher(ctx, in.done, in.touchDone)
	go in.run(ctx, in.stop, in.done)
	in.store.intake.CompareAndSwap(nil, in)
	return nil
}

// Stop commits what has been submitted so far, then stops the committer.
// Later Submits return ErrIntakeStopped. Stopping a stopped Intake is a no-op.
func (in *Intake) Stop() {
	in.mu.Lock()
	if !in.running {
		in.mu.Unlock()
		return
	}
	in.running = false
	in.store.intake.CompareAndSwap(in, nil)
	close(in.stop)
	done, touchDone := in.done, in.touchDone
	in.mu.Unlock()
	<-done
	<-touchDone // drained once the committer is done
}

// Pending returns how many submissions wait for the committer (a gauge for
// metrics; tests use it to know submitters are queued).
func (in *Intake) Pending() int { return int(in.pending.Load()) }

// Submit stores ns durably and returns once the transaction containing them
// has committed. An error means nothing can be assumed stored: answer 5xx so
// the sender retries (duplicates are dropped by the dedupe key). If ctx ends
// first Submit returns ctx.Err(), though the rows may still commit.
func (in *Intake) Submit(ctx context.Context, ns []Notification) (Result, error) {
	if len(ns) == 0 {
		return Result{IDs: []int64{}}, nil
	}
	now := in.store.now()
	batch := make([]Notification, len(ns))
	copy(batch, ns)
	for i := range batch {
		// Validate here so a bad notification fails only its own caller.
		if err := in.store.prepareNotification(&batch[i], now); err != nil {
			return Result{}, err
		}
	}

	in.mu.Lock()
	running, stop, done := in.running, in.stop, in.done
	in.mu.Unlock()
	if !running {
		return Result{}, ErrIntakeStopped
	}

	r := &intakeRequest{ns: batch, done: make(chan intakeReply, 1)}
	in.pending.Add(1)
	in.outstanding.Add(1)
	in.lastSubmit.Store(time.Now().UnixNano())
	select {
	case in.reqs <- r:
	case <-stop:
		in.pending.Add(-1)
		in.outstanding.Add(-1)
		return Result{}, ErrIntakeStopped
	case <-ctx.Done():
		in.pending.Add(-1)
		in.outstanding.Add(-1)
		return Result{}, ctx.Err()
	}

	select {
	case rep := <-r.done:
		return rep.res, rep.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(intakeQueued, intakeAbandoned) {
			in.pending.Add(-1)
			in.outstanding.Add(-1)
		}
		return Result{}, ctx.Err()
	case <-done:
		// The committer exited; it replies to everything it took first.
		select {
		case rep := <-r.done:
			return rep.res, rep.err
		default:
			if r.state.CompareAndSwap(intakeQueued, intakeAbandoned) {
				in.pending.Add(-1)
				in.outstanding.Add(-1)
			}
			return Result{}, ErrIntakeStopped
		}
	}
}

// take claims a queued request for a batch; false if its caller gave up.
func (in *Intake) take(r *intakeRequest) bool {
	if !r.state.CompareAndSwap(intakeQueued, intakeTaken) {
		return false
	}
	in.pending.Add(-1)
	return true
}

// mark applies a MarkNotificationsProcessed in the committer's next
// transaction and waits for it to commit. ErrIntakeStopped means it was not
// applied: the caller runs it itself.
func (in *Intake) mark(ctx context.Context, ids []int64, at time.Time) (int64, error) {
	rep := in.op(ctx, &markRequest{ids: ids, at: at, done: make(chan markReply, 1)})
	return rep.n, rep.err
}

// claim makes a ClaimNotifications in the committer's next transaction and
// waits for it to commit. ErrIntakeStopped: not made, the caller runs it.
// If ctx ends first the claim may still commit: its rows then wait for
// their lease to run out.
func (in *Intake) claim(ctx context.Context, owner string, limit int, lease time.Duration) ([]Notification, error) {
	rep := in.op(ctx, &markRequest{owner: owner, limit: limit, lease: lease, done: make(chan markReply, 1)})
	return rep.claimed, rep.err
}

func (in *Intake) op(ctx context.Context, m *markRequest) markReply {
	in.mu.Lock()
	running, stop, done := in.running, in.stop, in.done
	in.mu.Unlock()
	if !running {
		return markReply{err: ErrIntakeStopped}
	}
	select {
	case in.marks <- m:
	case <-stop:
		return markReply{err: ErrIntakeStopped}
	case <-ctx.Done():
		return markReply{err: ctx.Err()}
	}
	select {
	case rep := <-m.done:
		return rep
	case <-ctx.Done():
		// The update may still commit; processed rows are skipped on retry.
		return markReply{err: ctx.Err()}
	case <-done:
		select {
		case rep := <-m.done:
			return rep
		default:
			return markReply{err: ErrIntakeStopped}
		}
	}
}

// takeMarks returns the queued mark requests without waiting.
func (in *Intake) takeMarks(marks []*markRequest) []*markRequest {
	for {
		select {
		case m := <-in.marks:
			marks = append(marks, m)
		default:
			return marks
		}
	}
}

func (in *Intake) run(ctx context.Context, stop, done chan struct{}) {
	defer close(done)
	var carry *intakeRequest
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var batch []*intakeRequest
		var marks []*markRequest
		n := 0
		add := func(r *intakeRequest) bool {
			if !in.take(r) {
				return true
			}
			if n > 0 && n+len(r.ns) > in.cfg.MaxBatch {
				carry = r // starts the next batch
				return false
			}
			batch = append(batch, r)
			n += len(r.ns)
			return n < in.cfg.MaxBatch
		}

		stopping := false
		if carry != nil {
			r := carry
			carry = nil
			batch, n = append(batch, r), len(r.ns)
		} else {
			select {
			case r := <-in.reqs:
				add(r)
			case m := <-in.marks:
				marks = append(marks, m)
			case <-stop:
				stopping = true
			}
		}
		if stopping {
			// Commit what was already submitted, in MaxBatch-sized batches, then exit.
			for {
				select {
				case r := <-in.reqs:
					if !add(r) {
						in.commit(ctx, batch, in.takeMarks(nil))
						batch, n = nil, 0
						if carry != nil {
							batch, n, carry = []*intakeRequest{carry}, len(carry.ns), nil
						}
					}
					continue
				default:
				}
				if marks = in.takeMarks(nil); len(batch) > 0 || len(marks) > 0 {
					in.commit(ctx, batch, marks)
				}
				return
			}
		}
		if len(batch) == 0 && len(marks) == 0 {
			continue // the only request was abandoned
		}
		if len(batch) == 0 && in.cfg.OpsMaxWait > 0 &&
			time.Since(time.Unix(0, in.lastSubmit.Load())) < intakeBusyWindow {
			// Only marks or claims, while webhooks keep coming: let them
			// ride the next submission's commit rather than take an fsync
			// of their own that the next acknowledgement would queue behind.
			timer.Reset(in.cfg.OpsMaxWait)
			select {
			case r := <-in.reqs:
				add(r)
			case <-timer.C:
			case <-stop:
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}

		// Gather: first whatever is queued, then linger up to MaxWait.
		// Marks never make the committer linger: they ride along with
		// whatever commit comes next.
		timer.Reset(in.cfg.MaxWait)
	gather:
		for n < in.cfg.MaxBatch && carry == nil {
			select {
			case r := <-in.reqs:
				if !add(r) {
					break gather
				}
			default:
				if in.outstanding.Load() <= int64(len(batch)) {
					break gather // every live submission is in this batch
				}
				select {
				case r := <-in.reqs:
					if !add(r) {
						break gather
					}
				case <-timer.C:
					break gather
				case <-stop:
					break gather
				}
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		in.commit(ctx, batch, in.takeMarks(marks))
	}
}

// commit stores one batch and applies the queued processed-marks and
// claims in one transaction, hands the new rows it claimed to the inbox
// processor (InboxHandOff), and replies to every caller.
func (in *Intake) commit(ctx context.Context, batch []*intakeRequest, marks []*markRequest) {
	var all []Notification
	if len(batch) == 1 {
		all = batch[0].ns
	} else {
		n := 0
		for _, r := range batch {
			n += len(r.ns)
		}
		all = make([]Notification, 0, n)
		for _, r := range batch {
			all = append(all, r.ns...)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, in.cfg.CommitTimeout)
	defer cancel()

	// The handoff stays set (SetInboxHandOff waits) from Reserve to Deliver.
	var ho *InboxHandOff
	var claim insertClaim
	in.store.handoffMu.RLock()
	if ho = in.store.handoff; ho == nil {
		in.store.handoffMu.RUnlock()
	} else if len(all) > 0 {
		if claim.n = min(max(ho.Reserve(len(all)), 0), len(all)); claim.n > 0 {
			claim.owner, claim.until = ho.Owner, in.store.now().Add(ho.Lease)
		}
	}

	var res InsertResult
	replies := make([]markReply, len(marks))
	err := in.store.InboxTx(ctx, func(tx *sql.Tx) error {
		if len(all) > 0 {
			var err error
			if res, err = in.store.insertNotifications(ctx, tx, all, claim); err != nil {
				return err
			}
			if res.Inserted > 0 && in.cfg.BeforeCommit != nil {
				if err := in.cfg.BeforeCommit(ctx, tx, res.NewIDs()); err != nil {
					return fmt.Errorf("store: intake: %w", err)
				}
			}
		}
		// Marks first, so that a claim in the same commit never returns a
		// row this commit marked processed.
		for i, m := range marks {
			if m.owner != "" {
				continue
			}
			n, err := in.store.markNotificationsProcessed(ctx, tx, m.ids, m.at)
			if err != nil {
				return err
			}
			replies[i].n = n
		}
		for i, m := range marks {
			if m.owner == "" {
				continue
			}
			ns, err := in.store.claimNotifications(ctx, tx, m.owner, m.limit, m.lease)
			if err != nil {
				return err
			}
			replies[i].claimed = ns
		}
		return nil
	})
	unclaimed := 0 // new rows to wake the processor for (Stored)
	if ho == nil {
		unclaimed = res.Inserted
	} else if len(all) > 0 {
		var claimed []Notification
		if err == nil {
			for i, id := range res.IDs {
				switch {
				case id == 0:
				case i < claim.n:
					n := all[i]
					n.ID, n.Attempts = id, 1
					n.ReceivedAt = n.ReceivedAt.UTC().Truncate(time.Microsecond) // as stored
					claimed = append(claimed, n)
				default:
					unclaimed++
				}
			}
			slices.SortFunc(claimed, func(a, b Notification) int { return cmp.Compare(a.ID, b.ID) })
		}
		ho.Deliver(claim.n, claimed, unclaimed)
		unclaimed = 0 // Deliver told the processor
	}
	if ho != nil {
		if err == nil && ho.CaughtUp != nil {
			for i, m := range marks {
				if m.owner == ho.Owner && len(replies[i].claimed) < m.limit {
					ho.CaughtUp()
					break
				}
			}
		}
		in.store.handoffMu.RUnlock()
	}
	if err != nil && len(batch) > 0 && len(marks) > 0 {
		// Don't fail the marks and claims for the notifications' sake (a
		// failed mark makes its batch run again): retry them alone.
		in.replyBatch(ctx, batch, res, err)
		in.commit(ctx, nil, marks)
		return
	}
	for i, m := range marks {
		if err != nil {
			m.done <- markReply{err: err}
		} else {
			m.done <- replies[i]
		}
	}
	if len(batch) > 0 {
		if err == nil {
			in.touch(all)
			if unclaimed > 0 && in.cfg.Stored != nil {
				in.cfg.Stored()
			}
		}
		in.replyBatch(ctx, batch, res, err)
	}
}

// replyBatch answers the submitters of one commit.
func (in *Intake) replyBatch(ctx context.Context, batch []*intakeRequest, res InsertResult, err error) {
	defer in.outstanding.Add(-int64(len(batch)))
	if err != nil {
		n := 0
		for _, r := range batch {
			n += len(r.ns)
		}
		in.log.ErrorContext(ctx, "store: intake group commit failed",
			slog.Int("submissions", len(batch)), slog.Int("notifications", n), slog.String("err", err.Error()))
		for _, r := range batch {
			r.done <- intakeReply{err: err}
		}
		return
	}
	off := 0
	for _, r := range batch {
		ids := res.IDs[off : off+len(r.ns) : off+len(r.ns)]
		off += len(r.ns)
		out := Result{IDs: ids}
		for _, id := range ids {
			if id != 0 {
				out.Inserted++
			}
		}
		out.Duplicates = len(ids) - out.Inserted
		r.done <- intakeReply{res: out}
	}
}

// intakeTouchInterval is how stale a subscription's last_notification_at
// may get: it is refreshed at most this often per subscription, not for
// every commit (a write to the subscriptions table per commit).
const intakeTouchInterval = 30 * time.Second

// intakeTouchQueue bounds the touches waiting for the toucher.
const intakeTouchQueue = 64

// touch hands the committed notifications' subscriptions not touched within
// intakeTouchInterval to the toucher (committer goroutine only). The
// subscriptions live in the main database: on SQLite writing there in the
// commit would wait for its writer, behind River and the sync engine. The
// timestamp is informational, so a touch lost to a crash or a full queue
// costs nothing but staleness.
func (in *Intake) touch(ns []Notification) {
	now := in.store.now()
	var due []string
	for _, id := range distinctSubscriptionIDs(ns) {
		if last, ok := in.touched[id]; !ok || now.Sub(last) >= intakeTouchInterval || now.Before(last) {
			due = append(due, id)
		}
	}
	if len(due) == 0 {
		return
	}
	select {
	case in.touches <- due:
	default:
		return // retried with the next commit for these subscriptions
	}
	if len(in.touched) > 100_000 {
		clear(in.touched) // subscriptions come and go; don't grow forever
	}
	for _, id := range due {
		in.touched[id] = now
	}
}

// toucher writes last_notification_at for the subscriptions touch queued,
// until the committer is done (committerDone) and the queue is empty.
func (in *Intake) toucher(ctx context.Context, committerDone <-chan struct{}, done chan struct{}) {
	defer close(done)
	for {
		var ids []string
		select {
		case ids = <-in.touches:
		case <-committerDone:
			select {
			case ids = <-in.touches:
			default:
				return
			}
		}
		tctx, cancel := context.WithTimeout(ctx, in.cfg.CommitTimeout)
		err := in.store.TouchSubscriptions(tctx, in.store.db, ids, in.store.now())
		cancel()
		if err != nil {
			in.log.WarnContext(ctx, "store: intake: recording last notification time failed",
				slog.Int("subscriptions", len(ids)), slog.String("err", err.Error()))
		}
	}
}
