package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/bookingsync/bookingsync/internal/store"
)

// Instances on one PostgreSQL database share river_job. A job left
// "running" by a killed instance keeps its kind's unique periodic job from
// being inserted until River rescues it, JobTimeout + 1 minute later (11
// minutes: polls, renewal and window passes would stop that long). So
// each instance holds a lease "instance:<client id>", renewed every
// heartbeatEvery, and every instance makes running jobs whose last attempt
// belongs to an instance without a live lease runnable again. (SQLite has
// one instance: Start releases every running job instead.)
const (
	instanceLeaseTTL = 20 * time.Second
	heartbeatEvery   = 5 * time.Second
)

// InstanceLeaseKey is the lease an instance holds while it runs.
func InstanceLeaseKey(clientID string) string { return "instance:" + clientID }

// heartbeat renews this instance's lease and rescues the jobs of dead
// instances until ctx ends, then gives the lease up.
func (q *Queue) heartbeat(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	id := q.client.ID()
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := q.store.ReleaseLease(rctx, q.store.DB(), InstanceLeaseKey(id), id); err != nil {
				q.log.Warn("jobs: release instance lease", slog.String("err", err.Error()))
			}
			cancel()
			return
		case <-t.C:
		}
		if ok, err := q.store.TryLease(ctx, q.store.DB(), InstanceLeaseKey(id), id, instanceLeaseTTL); err != nil || !ok {
			q.log.Warn("jobs: renew instance lease", slog.Bool("held", ok), slog.Any("err", err))
			continue
		}
		if _, err := q.RescueOrphanedJobs(ctx); err != nil && ctx.Err() == nil {
			q.log.Warn("jobs: rescue jobs of stopped instances", slog.String("err", err.Error()))
		}
	}
}

// RescueOrphanedJobs makes running jobs of instances that no longer hold
// their lease available again (PostgreSQL; a no-op on SQLite). It returns
// how many it released.
func (q *Queue) RescueOrphanedJobs(ctx context.Context) (int, error) {
	if q.store.Backend() != store.BackendPostgres {
		return 0, nil
	}
	rows, err := q.store.DB().QueryContext(ctx, `
		UPDATE river_job SET state = 'available', scheduled_at = now()
		WHERE state = 'running'
		  AND cardinality(attempted_by) > 0
		  AND attempted_by[cardinality(attempted_by)] <> $1
		  AND NOT EXISTS (SELECT 1 FROM leases l
		                  WHERE l.key = 'instance:' || river_job.attempted_by[cardinality(river_job.attempted_by)]
		                    AND l.expires_at >= $2)
		RETURNING id, kind, attempted_by[cardinality(attempted_by)]`, q.client.ID(), q.store.Now().UTC())
	if err != nil {
		return 0, fmt.Errorf("rescue running jobs of stopped instances: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id int64
		var kind, by string
		if err := rows.Scan(&id, &kind, &by); err != nil {
			return n, fmt.Errorf("rescue running jobs of stopped instances: %w", err)
		}
		n++
		q.log.Warn("jobs: job of a stopped instance made available again", slog.Int64("job_id", id), slog.String("kind", kind), slog.String("instance", by))
	}
	return n, rows.Err()
}
