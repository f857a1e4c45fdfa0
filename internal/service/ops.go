package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/bookingsync/bookingsync/internal/engine"
	"github.com/bookingsync/bookingsync/internal/httpapi"
	"github.com/bookingsync/bookingsync/internal/store"
)

// The admin backend's operational side (httpapi.OpsBackend): the
// mass-delete guard's passes, the audit log, failed work.

var _ httpapi.OpsBackend = (*adminBackend)(nil)

func (a *adminBackend) Passes(ctx context.Context, status string) ([]httpapi.GuardPass, error) {
	st := a.s.Store
	ps, err := st.ListGuardPasses(ctx, st.DB(), store.GuardPassFilter{Status: store.GuardStatus(status)})
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.GuardPass, 0, len(ps))
	for _, p := range ps {
		out = append(out, a.guardPass(ctx, p))
	}
	return out, nil
}

// guardPass maps a stored pass, naming the resource whose mailbox it is.
func (a *adminBackend) guardPass(ctx context.Context, p store.GuardPass) httpapi.GuardPass {
	out := httpapi.GuardPass{ID: p.ID, Mailbox: p.Scope, Side: string(p.Side), Deletes: p.Deletes, Linked: p.Linked,
		Status: string(p.Status), CreatedAt: p.CreatedAt, ApprovedAt: p.ApprovedAt, ApprovedBy: p.ApprovedBy, Plan: p.Plan}
	st := a.s.Store
	if rs, err := st.ListResources(ctx, st.DB(), store.ResourceFilter{Mailbox: p.Scope}); err == nil && len(rs) > 0 {
		out.ResourceID, out.Resource = rs[0].ID, rs[0].Name
	}
	return out
}

func (a *adminBackend) ApprovePass(ctx context.Context, id, by string) (httpapi.PassApproval, error) {
	res, err := a.s.massDeleteGuard().Approve(ctx, strings.TrimSpace(id), by)
	if err != nil {
		return httpapi.PassApproval{}, passError(id, err)
	}
	a.s.log.Warn("mass-delete guard: pass approved", "pass", id, "by", by, "items", res.Items, "applied", res.Applied,
		"errors", len(res.Errors))
	return httpapi.PassApproval{Pass: a.guardPass(ctx, res.Pass), Items: res.Items, Applied: res.Applied, Errors: res.Errors}, nil
}

func (a *adminBackend) DiscardPass(ctx context.Context, id, by string) (httpapi.GuardPass, error) {
	p, err := a.s.massDeleteGuard().Discard(ctx, strings.TrimSpace(id), by)
	if err != nil {
		return httpapi.GuardPass{}, passError(id, err)
	}
	return a.guardPass(ctx, p), nil
}

func passError(id string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: pass %s", httpapi.ErrNoSuchItem, id)
	case errors.Is(err, engine.ErrPassClosed):
		return fmt.Errorf("%w: %v", httpapi.ErrWrongState, err)
	}
	return err
}

func (a *adminBackend) AuditLog(ctx context.Context, q httpapi.AuditQuery) ([]httpapi.AuditEntry, error) {
	f := store.AuditFilter{BookingID: strings.ToLower(strings.TrimSpace(q.Booking)), Since: q.Since, Limit: q.Limit}
	if q.Resource != "" {
		// A UPN or mailbox names the resource; an id the store no longer
		// knows is still looked up as given (the audit outlives resources).
		f.ResourceID = q.Resource
		if r, err := a.resolve(ctx, q.Resource); err == nil {
			f.ResourceID = r.ID
		}
	}
	st := a.s.Store
	es, err := st.QueryAudit(ctx, st.DB(), f)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.AuditEntry, 0, len(es))
	for _, e := range es {
		out = append(out, httpapi.AuditEntry{ID: e.ID, At: e.At, ResourceID: e.ResourceID, BookingID: e.BookingID,
			EventID: e.EventID, Side: string(e.Side), Action: e.Action, Reason: e.Reason, Before: e.Before,
			After: e.After, Outcome: e.Outcome, Error: e.Error})
	}
	return out, nil
}

func (a *adminBackend) Dead(ctx context.Context, limit int) (httpapi.DeadItems, error) {
	st := a.s.Store
	ns, err := st.ListDeadNotifications(ctx, st.DB(), limit)
	if err != nil {
		return httpapi.DeadItems{}, err
	}
	var out httpapi.DeadItems
	for _, n := range ns {
		out.Notifications = append(out.Notifications, httpapi.DeadNotification{ID: n.ID, Source: string(n.Source),
			Mailbox: n.Mailbox, ItemID: n.ItemID, ChangeType: n.ChangeType, ReceivedAt: n.ReceivedAt,
			Attempts: n.Attempts, DeadAt: n.DeadAt, LastError: n.LastError})
	}
	jobs, err := a.s.Queue.Client().JobList(ctx, river.NewJobListParams().
		States(rivertype.JobStateDiscarded).OrderBy(river.JobListOrderByFinalizedAt, river.SortOrderDesc).First(limit))
	if err != nil {
		return out, fmt.Errorf("list discarded jobs: %w", err)
	}
	for _, j := range jobs.Jobs {
		dj := httpapi.DeadJob{ID: j.ID, Kind: j.Kind, Args: j.EncodedArgs, Attempts: j.Attempt, MaxAttempts: j.MaxAttempts,
			FinalizedAt: j.FinalizedAt}
		if n := len(j.Errors); n > 0 {
			dj.LastError = j.Errors[n-1].Error
		}
		out.Jobs = append(out.Jobs, dj)
	}
	return out, nil
}

func (a *adminBackend) ReprocessNotification(ctx context.Context, id int64) error {
	err := a.s.Store.RequeueNotification(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: notification %d (or it was processed)", httpapi.ErrNoSuchItem, id)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: notification %d is being processed", httpapi.ErrWrongState, id)
	case err != nil:
		return err
	}
	a.s.log.Info("dead notification requeued", "id", id)
	a.s.Inbox.Wake()
	return nil
}

func (a *adminBackend) RetryJob(ctx context.Context, id int64) error {
	c := a.s.Queue.Client()
	j, err := c.JobGet(ctx, id)
	if errors.Is(err, river.ErrNotFound) {
		return fmt.Errorf("%w: job %d", httpapi.ErrNoSuchItem, id)
	}
	if err != nil {
		return err
	}
	if j.State != rivertype.JobStateDiscarded && j.State != rivertype.JobStateCancelled {
		return fmt.Errorf("%w: job %d is %s, not discarded", httpapi.ErrWrongState, id, j.State)
	}
	if _, err := c.JobRetry(ctx, id); err != nil {
		return fmt.Errorf("retry job %d: %w", id, err)
	}
	a.s.log.Info("discarded job retried", "id", id, "kind", j.Kind)
	return nil
}
