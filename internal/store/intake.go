package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrIntakeStopped is returned by Submit when the Intake is not running.
var ErrIntakeStopped = errors.New("store: intake is not running")

// EnqueueFunc enqueues the job(s) that process newly stored inbox rows, in
// the intake's transaction (e.g. River's InsertTx). It is called once per
// commit with every new id in that commit, never with an empty slice.
type EnqueueFunc func(ctx context.Context, tx *sql.Tx, ids []int64) error

// Defaults for IntakeConfig.
const (
	IntakeMaxBatchDefault      = 2000
	IntakeMaxWaitDefault       = 2 * time.Millisecond
	IntakeQueueSizeDefault     = 4096
	IntakeCommitTimeoutDefault = 30 * time.Second
)

// IntakeConfig configures an Intake.
type IntakeConfig struct {
	// Enqueue is required: without it stored rows would never be processed.
	Enqueue EnqueueFunc
	Logger  *slog.Logger
	// MaxBatch bounds the notifications in one commit. A single Submit is
	// never split, so one larger than MaxBatch commits alone.
	MaxBatch int
	// MaxWait is how long the committer lingers for more submissions after
	// the first one of a batch. Under load batches also form while the
	// previous commit is in flight, so this only needs to be short.
	MaxWait time.Duration
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
// calls are coalesced into one transaction, which inserts the rows (ignoring
// duplicates), marks their subscriptions as heard from, and enqueues the
// processing job(s), so that one fsync covers many HTTP requests. Each
// Submit returns only after its transaction committed, or with its error.
type Intake struct {
	store *Store
	cfg   IntakeConfig
	log   *slog.Logger

	reqs    chan *intakeRequest
	pending atomic.Int64 // queued, not yet taken by the committer
	// outstanding counts submissions queued or in the batch being built.
	// When all of them are in the batch nobody can join it, so the
	// committer commits without lingering for MaxWait.
	outstanding atomic.Int64

	mu      sync.Mutex
	running bool
	stop    chan struct{}
	done    chan struct{}
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

// NewIntake returns a stopped Intake writing to s.
func NewIntake(s *Store, cfg IntakeConfig) (*Intake, error) {
	if cfg.Enqueue == nil {
		return nil, errors.New("store: intake: Enqueue is required")
	}
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
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = IntakeCommitTimeoutDefault
	}
	return &Intake{store: s, cfg: cfg, log: cfg.Logger, reqs: make(chan *intakeRequest, cfg.QueueSize)}, nil
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
	go in.run(context.WithoutCancel(ctx), in.stop, in.done)
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
	close(in.stop)
	done := in.done
	in.mu.Unlock()
	<-done
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

func (in *Intake) run(ctx context.Context, stop, done chan struct{}) {
	defer close(done)
	var carry *intakeRequest
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var batch []*intakeRequest
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
						in.commit(ctx, batch)
						batch, n = nil, 0
						if carry != nil {
							batch, n, carry = []*intakeRequest{carry}, len(carry.ns), nil
						}
					}
					continue
				default:
				}
				if len(batch) > 0 {
					in.commit(ctx, batch)
				}
				return
			}
		}
		if len(batch) == 0 {
			continue // the only request was abandoned
		}

		// Gather: first whatever is queued, then linger up to MaxWait.
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
		in.commit(ctx, batch)
	}
}

// commit stores one batch in one transaction and replies to every caller.
func (in *Intake) commit(ctx context.Context, batch []*intakeRequest) {
	var all []Notification
	for _, r := range batch {
		all = append(all, r.ns...)
	}
	ctx, cancel := context.WithTimeout(ctx, in.cfg.CommitTimeout)
	defer cancel()

	var res InsertResult
	err := in.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if res, err = in.store.InsertNotifications(ctx, tx, all); err != nil {
			return err
		}
		if err := in.store.TouchSubscriptions(ctx, tx, distinctSubscriptionIDs(all), in.store.now()); err != nil {
			return err
		}
		if res.Inserted == 0 {
			return nil
		}
		if err := in.cfg.Enqueue(ctx, tx, res.NewIDs()); err != nil {
			return fmt.Errorf("store: intake: enqueueing processing job: %w", err)
		}
		return nil
	})
	if err != nil {
		in.log.ErrorContext(ctx, "store: intake group commit failed",
			slog.Int("submissions", len(batch)), slog.Int("notifications", len(all)), slog.String("err", err.Error()))
		for _, r := range batch {
			r.done <- intakeReply{err: err}
		}
		in.outstanding.Add(-int64(len(batch)))
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
	in.outstanding.Add(-int64(len(batch)))
}
