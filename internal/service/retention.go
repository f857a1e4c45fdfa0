package service

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/bookingsync/bookingsync/internal/jobs"
)

// KindRetention is the retention job's kind (stored in river_job.kind).
const KindRetention = "retention"

// RetentionInterval is how often the leader enqueues the retention job.
const RetentionInterval = time.Hour

// RetentionArgs runs one retention pass (periodic, leader only).
type RetentionArgs struct{}

func (RetentionArgs) Kind() string { return KindRetention }
func (RetentionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, UniqueOpts: river.UniqueOpts{ByPeriod: RetentionInterval}}
}

// RetentionResult says what one pass deleted.
type RetentionResult struct {
	Notifications, Audit int64
}

// Retain deletes processed inbox rows older than retention.notifications
// and audit entries older than retention.audit, relative to now. Pending
// and dead inbox rows are kept. Finished River jobs are not touched here:
// River's cleaner removes them (retention.jobs, set in New).
func (s *Service) Retain(ctx context.Context, now time.Time) (RetentionResult, error) {
	var res RetentionResult
	st, r := s.Store, s.cfg.Retention
	n, err := st.DeleteProcessedNotificationsBefore(ctx, st.InboxDB(), now.Add(-r.Notifications))
	if err != nil {
		return res, err
	}
	res.Notifications = n
	s.Metrics.RetentionDeleted.WithLabelValues("notifications").Add(float64(n))
	a, err := st.DeleteAuditBefore(ctx, st.DB(), now.Add(-r.Audit))
	if err != nil {
		return res, err
	}
	res.Audit = a
	s.Metrics.RetentionDeleted.WithLabelValues("audit").Add(float64(a))
	if n > 0 || a > 0 {
		s.log.Info("retention", "notifications_deleted", n, "audit_deleted", a,
			"notifications_older_than", r.Notifications.String(), "audit_older_than", r.Audit.String())
	}
	return res, nil
}

func (s *Service) retentionWorker(w *river.Workers) error {
	return river.AddWorkerSafely(w, river.WorkFunc(func(ctx context.Context, _ *river.Job[RetentionArgs]) error {
		_, err := s.Retain(ctx, time.Now())
		return err
	}))
}

func (s *Service) retentionPeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(RetentionInterval),
		func() (river.JobArgs, *river.InsertOpts) { return RetentionArgs{}, nil },
		&river.PeriodicJobOpts{ID: KindRetention, RunOnStart: true})
}

// jobStates counts River jobs by state for the bookingsync_jobs gauge.
func (s *Service) jobStates(ctx context.Context) (map[string]int64, error) {
	st, err := s.Queue.Stats(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]int64{
		"available": st.Available, "scheduled": st.Scheduled, "pending": st.Pending, "running": st.Running,
		"retryable": st.Retryable, "completed": st.Completed, "cancelled": st.Cancelled, "discarded": st.Discarded,
	}, nil
}

// nearestExpiry is the soonest subscription expiry in the store.
func (s *Service) nearestExpiry(ctx context.Context) (time.Time, bool, error) {
	subs, err := s.Store.ListSubscriptions(ctx, s.Store.DB())
	if err != nil || len(subs) == 0 {
		return time.Time{}, false, err
	}
	return subs[0].ExpiresAt, true, nil
}
