package jobs

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bookingsync/bookingsync/internal/store"
)

// Defaults for InboxConfig.
const (
	InboxBatchSizeDefault    = 100
	InboxConcurrencyDefault  = 4
	InboxPollIntervalDefault = time.Second
	InboxLeaseDefault        = time.Minute
	InboxMaxAttemptsDefault  = 10
	InboxStopTimeoutDefault  = 30 * time.Second
)

// InboxConfig configures an Inbox.
type InboxConfig struct {
	Logger *slog.Logger
	// ProcessNotifications handles one batch of claimed rows, in id order
	// (internal/service's processNotifications). It may mark rows processed
	// itself (store.MarkNotificationsProcessed on the pool) to keep partial
	// progress; returning nil marks the whole batch processed, an error
	// retries the rows it did not mark, with backoff. nil: rows are just
	// marked processed.
	ProcessNotifications func(ctx context.Context, ns []store.Notification) error
	// BatchSize bounds the rows of one batch; Concurrency the batches in
	// flight at once.
	BatchSize   int
	Concurrency int
	// PollInterval is how often the processor looks for work nobody woke
	// it for: rows another instance stored, retries coming due, rows left
	// by a crash.
	PollInterval time.Duration
	// Lease is how long a claim lasts; the processor renews it for batches
	// that take longer. A crashed instance's rows wait this long.
	Lease time.Duration
	// MaxAttempts: after this many failed attempts a row is dead.
	MaxAttempts int
	// Backoff returns the wait before attempt n+1 after n failed ones
	// (default: 2s·2^(n-1), at most 30 min, with jitter from half to all of it).
	Backoff func(attempts int) time.Duration
	// Owner names this processor in claims (default: host, pid and a random suffix).
	Owner string
	// StopTimeout bounds how long Stop waits for batches in flight before
	// cancelling their context.
	StopTimeout time.Duration
	// Registerer, if set, gets the processor's metrics.
	Registerer prometheus.Registerer
}

// Inbox processes the notification inbox: it claims batches of pending
// rows in id order and hands them to ProcessNotifications, a few batches
// at a time. While it runs, an Intake on the same store claims new rows for
// it in the commit that stores them and hands them over in memory
// (store.InboxHandOff) as far as it has room and no backlog waits in the
// database; it claims from the database when woken (Wake), when the intake
// stored rows it had no room for, while such a backlog lasts, and when it
// polls (rows another instance stored, retries coming due, rows left by a
// crash). Claims are safe across instances sharing a PostgreSQL
// database (store.ClaimNotifications); no row is ever in two batches at
// once. A failed row is retried with exponential backoff and jitter; after
// MaxAttempts it is dead: logged, counted, listed by
// store.ListDeadNotifications until store.RequeueNotification.
type Inbox struct {
	st  *store.Store
	cfg InboxConfig
	log *slog.Logger

	wake chan struct{}
	// kick starts batches without claiming from the database (unless a
	// backlog is known): rows were handed over, or a batch finished.
	kick chan struct{}

	handOff *store.InboxHandOff
	// hoMu guards the rows handed over and not yet started (handed), the
	// rows this processor holds (held: reserved, handed, in flight), and
	// whether rows may be waiting unclaimed in the database (backlog,
	// with backlogGen counting the times it was set).
	hoMu       sync.Mutex
	handed     []store.Notification
	held       int
	accepting  bool
	backlog    bool
	backlogGen uint64

	mu      sync.Mutex
	running bool
	stop    chan struct{}
	done    chan struct{}

	// inflight are the ids of the batches being processed, for lease renewal.
	inflightMu sync.Mutex
	inflight   map[int64]struct{}

	processed, failed, dead prometheus.Counter
	deadRows, pendingRows   prometheus.Gauge
}

// NewInbox returns a stopped processor for st's inbox.
func NewInbox(st *store.Store, cfg InboxConfig) *Inbox {
	if cfg.Logger == nil {
		cfg.Logger = st.Logger()
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = InboxBatchSizeDefault
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = InboxConcurrencyDefault
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = InboxPollIntervalDefault
	}
	if cfg.Lease <= 0 {
		cfg.Lease = InboxLeaseDefault
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = InboxMaxAttemptsDefault
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultInboxBackoff
	}
	if cfg.Owner == "" {
		cfg.Owner = defaultOwner()
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = InboxStopTimeoutDefault
	}
	p := &Inbox{st: st, cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), kick: make(chan struct{}, 1),
		inflight: map[int64]struct{}{},
		processed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "bookingsync", Name: "inbox_processed_total",
			Help: "Notifications processed from the inbox by this instance."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "bookingsync", Name: "inbox_failed_attempts_total",
			Help: "Failed attempts at processing a notification (each is retried with backoff, or dead)."}),
		dead: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "bookingsync", Name: "inbox_dead_total",
			Help: "Notifications this instance gave up on after their last attempt."}),
		deadRows: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "bookingsync", Name: "inbox_dead",
			Help: "Dead notifications in the inbox (alert on this; `reprocess` requeues one)."}),
		pendingRows: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "bookingsync", Name: "inbox_pending",
			Help: "Notifications waiting to be processed (including retries not yet due)."}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{p.processed, p.failed, p.dead, p.deadRows, p.pendingRows} {
			if err := cfg.Registerer.Register(c); err != nil {
				p.log.Warn("jobs: inbox: registering metric", slog.String("err", err.Error()))
			}
		}
	}
	return p
}

// DefaultInboxBackoff is 2s·2^(n-1) capped at 30 minutes, jittered to
// between half and all of that, so rows that failed together spread out.
func DefaultInboxBackoff(attempts int) time.Duration {
	d := 30 * time.Minute
	if attempts < 11 {
		d = min(d, 2*time.Second<<max(attempts-1, 0))
	}
	return d/2 + rand.N(d/2+1)
}

func defaultOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = crand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Owner is the name this processor claims rows under.
func (p *Inbox) Owner() string { return p.cfg.Owner }

// Wake makes the processor look for work now. It never blocks.
func (p *Inbox) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Start launches the processor; rows already pending are claimed at once.
// ctx carries values for logging only; Stop ends the processor.
func (p *Inbox) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	if n, err := p.st.ReleaseOtherClaims(ctx, p.cfg.Owner); err != nil {
		return fmt.Errorf("jobs: inbox: %w", err)
	} else if n > 0 {
		p.log.InfoContext(ctx, "jobs: inbox: released claims left by a previous run", slog.Int64("rows", n))
	}
	p.running = true
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	p.hoMu.Lock()
	p.accepting, p.backlog, p.held, p.handed = true, true, 0, nil
	p.hoMu.Unlock()
	p.handOff = &store.InboxHandOff{Owner: p.cfg.Owner, Lease: p.cfg.Lease, Reserve: p.reserve, Deliver: p.deliver,
		CaughtUp: p.caughtUp}
	p.st.SetInboxHandOff(p.handOff)
	go p.run(ctx, p.stop, p.done)
	p.Wake()
	return nil
}

// capacity is how many rows the processor holds at most from handoffs.
func (p *Inbox) capacity() int { return p.cfg.Concurrency * p.cfg.BatchSize }

// reserve is the handoff's Reserve: room for new rows, unless rows may be
// waiting in the database (they go first, in id order).
func (p *Inbox) reserve(n int) int {
	p.hoMu.Lock()
	defer p.hoMu.Unlock()
	if !p.accepting || p.backlog {
		return 0
	}
	k := min(n, p.capacity()-p.held)
	if k <= 0 {
		return 0
	}
	p.held += k
	return k
}

// caughtUp is the handoff's CaughtUp: a claim came back short after every
// earlier commit's rows were stored, so none wait unclaimed.
func (p *Inbox) caughtUp() {
	p.hoMu.Lock()
	p.backlog = false
	p.hoMu.Unlock()
}

// deliver is the handoff's Deliver.
func (p *Inbox) deliver(reserved int, claimed []store.Notification, unclaimed int) {
	p.hoMu.Lock()
	p.held -= reserved - len(claimed)
	p.handed = append(p.handed, claimed...)
	if unclaimed > 0 {
		p.backlog = true
		p.backlogGen++
	}
	p.hoMu.Unlock()
	if len(claimed) > 0 {
		p.track(claimed, true) // their lease is renewed like a batch's
	}
	if len(claimed) > 0 || unclaimed > 0 {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// Stop stops claiming and waits for the batches in flight to finish (up to
// StopTimeout, then their context is cancelled and their unfinished rows
// released). Stopping a stopped processor is a no-op.
func (p *Inbox) Stop() {
	p.mu.Lock()
	if !p.running {
		p.mu.Unlock()
		return
	}
	p.running = false
	// No commit hands over rows after this.
	p.st.ClearInboxHandOff(p.handOff)
	close(p.stop)
	done := p.done
	p.mu.Unlock()
	<-done
}

func (p *Inbox) run(ctx context.Context, stop, done chan struct{}) {
	defer close(done)
	// Batches run on their own context: Stop lets them finish, and only
	// cancels it after StopTimeout.
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slots := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	poll := time.NewTicker(p.cfg.PollInterval)
	defer poll.Stop()
	renew := time.NewTicker(p.cfg.Lease / 3)
	defer renew.Stop()
	p.refreshGauges(ctx)
	for {
		select {
		case <-stop:
			p.releaseHanded(ctx)
			finished := make(chan struct{})
			go func() { wg.Wait(); close(finished) }()
			select {
			case <-finished:
			case <-time.After(p.cfg.StopTimeout):
				p.log.WarnContext(ctx, "jobs: inbox: batches still running at stop timeout, cancelling them")
				cancel()
				<-finished
			}
			return
		case <-p.wake:
			p.setBacklog()
		case <-p.kick:
		case <-poll.C:
			p.refreshGauges(ctx)
			p.setBacklog()
		case <-renew.C:
			p.renewLeases(ctx)
			continue
		}
		p.fill(ctx, bctx, slots, &wg)
	}
}

// setBacklog notes that rows may be waiting in the database: the handoff
// pauses and fill claims until a claim comes back short.
func (p *Inbox) setBacklog() {
	p.hoMu.Lock()
	p.backlog = true
	p.backlogGen++
	p.hoMu.Unlock()
}

// releaseHanded gives back the claims of rows handed over but never
// started (the processor is stopping).
func (p *Inbox) releaseHanded(ctx context.Context) {
	p.hoMu.Lock()
	ns := p.handed
	p.handed, p.accepting = nil, false
	p.hoMu.Unlock()
	if len(ns) == 0 {
		return
	}
	p.track(ns, false)
	ids := make([]int64, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.st.ReleaseNotifications(rctx, p.cfg.Owner, ids); err != nil {
		p.log.WarnContext(ctx, "jobs: inbox: releasing claims at stop failed", slog.String("err", err.Error()))
	}
}

// fill starts batches while slots are free: first of the rows handed
// over by the intake, then, while rows may be waiting in the database, of
// rows claimed there (one claim for all free slots). A batch that finishes
// kicks the processor again.
func (p *Inbox) fill(ctx, bctx context.Context, slots chan struct{}, wg *sync.WaitGroup) {
	for {
		free := 0
	count:
		for {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break count
			}
		}
		if free == 0 {
			return
		}
		// Rows handed over first: they are claimed already.
		p.hoMu.Lock()
		for free > 0 && len(p.handed) > 0 {
			k := min(len(p.handed), p.cfg.BatchSize)
			ns := slices.Clone(p.handed[:k])
			p.handed = p.handed[k:]
			if len(p.handed) == 0 {
				p.handed = nil
			}
			free--
			p.start(bctx, ns, slots, wg)
		}
		backlog, gen := p.backlog, p.backlogGen
		p.hoMu.Unlock()
		if free == 0 || !backlog {
			for range free {
				<-slots
			}
			return
		}
		limit := free * p.cfg.BatchSize
		ns, err := p.st.ClaimNotifications(ctx, p.cfg.Owner, limit, p.cfg.Lease)
		p.hoMu.Lock()
		if err == nil && len(ns) < limit && p.backlogGen == gen {
			p.backlog = false // caught up: new rows may be handed over again
		}
		p.held += len(ns)
		p.hoMu.Unlock()
		if err != nil {
			p.log.WarnContext(ctx, "jobs: inbox: claiming notifications failed", slog.String("err", err.Error()))
		}
		p.track(ns, true)
		for len(ns) > 0 {
			k := min(len(ns), p.cfg.BatchSize)
			free--
			p.start(bctx, ns[:k:k], slots, wg)
			ns = ns[k:]
		}
		for range free {
			<-slots
		}
		if err != nil || free > 0 {
			return
		}
		// Every slot got a full batch: more may be waiting once one frees.
	}
}

// start runs one batch of claimed (and tracked) rows in a slot already taken.
func (p *Inbox) start(bctx context.Context, ns []store.Notification, slots chan struct{}, wg *sync.WaitGroup) {
	if len(ns) == 0 {
		<-slots
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.process(bctx, ns)
		p.track(ns, false)
		p.hoMu.Lock()
		p.held -= len(ns)
		p.hoMu.Unlock()
		<-slots
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}()
}

func (p *Inbox) track(ns []store.Notification, add bool) {
	p.inflightMu.Lock()
	defer p.inflightMu.Unlock()
	for _, n := range ns {
		if add {
			p.inflight[n.ID] = struct{}{}
		} else {
			delete(p.inflight, n.ID)
		}
	}
}

// renewLeases extends the claims of the batches in flight.
func (p *Inbox) renewLeases(ctx context.Context) {
	p.inflightMu.Lock()
	ids := make([]int64, 0, len(p.inflight))
	for id := range p.inflight {
		ids = append(ids, id)
	}
	p.inflightMu.Unlock()
	if len(ids) == 0 {
		return
	}
	if err := p.st.ExtendClaims(ctx, p.cfg.Owner, ids, p.cfg.Lease); err != nil {
		p.log.WarnContext(ctx, "jobs: inbox: renewing claims failed", slog.String("err", err.Error()))
	}
}

func (p *Inbox) refreshGauges(ctx context.Context) {
	if p.cfg.Registerer == nil {
		return
	}
	if n, err := p.st.CountDeadNotifications(ctx, p.st.InboxReadDB()); err == nil {
		p.deadRows.Set(float64(n))
	}
	if n, err := p.st.CountUnprocessedNotifications(ctx, p.st.InboxReadDB()); err == nil {
		p.pendingRows.Set(float64(n))
	}
}

// process runs one batch and records its outcome.
func (p *Inbox) process(ctx context.Context, ns []store.Notification) {
	ids := make([]int64, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	err := p.handle(ctx, ns)
	if err == nil {
		// The handler may have marked them already: those are skipped.
		// On the pool, while the intake runs, this joins its next commit.
		if _, err = p.st.MarkNotificationsProcessed(ctx, p.st.DB(), ids, p.st.Now()); err == nil {
			p.processed.Add(float64(len(ns)))
			return
		}
	}
	// Record the outcome even if Stop cancelled ctx.
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if ctx.Err() != nil {
		// Stopping: not the rows' fault. Release them for the next run or
		// another instance (processed ones are left alone).
		if rerr := p.st.ReleaseNotifications(octx, p.cfg.Owner, ids); rerr != nil {
			p.log.WarnContext(octx, "jobs: inbox: releasing claims at stop failed", slog.String("err", rerr.Error()))
		}
		return
	}
	p.fail(octx, ns, err)
}

// handle calls the handler, turning a panic into an error.
func (p *Inbox) handle(ctx context.Context, ns []store.Notification) (err error) {
	if p.cfg.ProcessNotifications == nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return p.cfg.ProcessNotifications(ctx, ns)
}

// fail schedules the retry of the rows of a failed batch that are still
// unprocessed, or gives up on those out of attempts.
func (p *Inbox) fail(ctx context.Context, ns []store.Notification, cause error) {
	ids := make([]int64, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	current, err := p.st.GetNotifications(ctx, p.st.InboxDB(), ids)
	if err != nil {
		// The lease runs out and the rows come back: no row is lost.
		p.log.ErrorContext(ctx, "jobs: inbox: reading a failed batch", slog.String("err", err.Error()),
			slog.String("cause", cause.Error()))
		return
	}
	attempts := map[int64]int{}
	for _, n := range ns {
		attempts[n.ID] = n.Attempts
	}
	now := p.st.Now()
	var fails []store.NotificationFailure
	var deadIDs []int64
	for _, n := range current {
		if n.ProcessedAt != nil {
			continue
		}
		f := store.NotificationFailure{ID: n.ID, Error: cause.Error()}
		if a := attempts[n.ID]; a < p.cfg.MaxAttempts {
			f.RetryAt = now.Add(p.cfg.Backoff(a))
		} else {
			deadIDs = append(deadIDs, n.ID)
		}
		fails = append(fails, f)
	}
	if len(fails) == 0 {
		return
	}
	p.failed.Add(float64(len(fails)))
	dead, err := p.st.FailNotifications(ctx, p.cfg.Owner, fails)
	if err != nil {
		p.log.ErrorContext(ctx, "jobs: inbox: recording failed attempts", slog.String("err", err.Error()),
			slog.String("cause", cause.Error()))
		return
	}
	p.log.WarnContext(ctx, "jobs: inbox: processing failed, will retry",
		slog.Int("rows", len(fails)-len(deadIDs)), slog.String("err", cause.Error()))
	if dead > 0 {
		p.dead.Add(float64(dead))
		p.deadRows.Add(float64(dead))
		p.log.ErrorContext(ctx, "jobs: inbox: notifications dead after their last attempt (list them, fix the cause, reprocess)",
			slog.Int64("rows", dead), slog.Any("ids", deadIDs), slog.Int("max_attempts", p.cfg.MaxAttempts),
			slog.String("err", cause.Error()))
	}
}
