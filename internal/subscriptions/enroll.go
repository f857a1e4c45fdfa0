package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/keylock"
	"github.com/bookingsync/bookingsync/internal/store"
)

// DataverseAPI is the part of the Dataverse client enrollment uses.
type DataverseAPI interface {
	Get(ctx context.Context, entitySet, id string, q dataverse.Query, out any) error
	List(ctx context.Context, entitySet string, q dataverse.Query, each func(json.RawMessage) error) error
	Update(ctx context.Context, entitySet, id string, body any, ifMatch string) error
}

// ResourceStore is the persistence enrollment needs.
type ResourceStore interface {
	UpsertResource(ctx context.Context, r store.Resource) error
	GetResource(ctx context.Context, id string) (store.Resource, error)
	ListResources(ctx context.Context) ([]store.Resource, error)
	SetResourceStatusText(ctx context.Context, id, text string) (changed bool, err error)
}

// EnrollConfig names the opt-in columns (configurable, as the admin's
// solution may use other names).
type EnrollConfig struct {
	OptInColumn  string // choice column, default bsync_outlooksync
	Allowed      int    // default 100000000
	NotAllowed   int    // default 100000001
	StatusColumn string // text column, default bsync_outlooksyncstatus; "" disables write-back
	// Workers is how many resources ReconcileAll reconciles at once
	// (default DefaultEnrollWorkers when <= 0; 1 is sequential).
	Workers int
}

// DefaultEnrollWorkers is EnrollConfig.Workers' default. Each reconciliation
// mostly waits (a Dataverse read, then Graph's create, which includes Graph's
// validation request to our endpoint), so a few in parallel make a mass
// enrollment as fast as the Manager's subscription budget allows; more would
// only queue in that budget and in Dataverse's service protection limits.
const DefaultEnrollWorkers = 8

// Enroller decides from Dataverse which mailboxes are watched and tells the
// person who flipped the column what happened, in the status column.
type Enroller struct {
	cfg   EnrollConfig
	dv    DataverseAPI
	mgr   *Manager
	store ResourceStore
	log   *slog.Logger

	// locks serialises work per resource: a reconciliation that read
	// "Allowed" must not finish after one that read the later "Not Allowed".
	locks keylock.Map
}

// NewEnroller returns an Enroller.
func NewEnroller(cfg EnrollConfig, dv DataverseAPI, mgr *Manager, s ResourceStore, log *slog.Logger) *Enroller {
	return &Enroller{cfg: cfg, dv: dv, mgr: mgr, store: s, log: log}
}

// Decision is what enrollment concludes about one resource.
type Decision struct {
	Subscribe bool
	Mailbox   string // the user's Entra object id when Subscribe
	UPN       string
	// Reason explains a "no" for the status column; "" when the resource
	// simply isn't opted in.
	Reason string
	OptIn  store.OptIn
}

// Decide is the enrollment rule, without I/O: a bookable resource is watched
// when its opt-in column is Allowed, it is active, it is of type User and its
// systemuser is enabled and has an Entra object id. An empty opt-in column
// means Not Allowed.
func Decide(cfg EnrollConfig, r dataverse.BookableResource, u *dataverse.SystemUser) (Decision, error) {
	v, set, err := r.Choice(cfg.OptInColumn)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{OptIn: store.OptInNotAllowed}
	switch {
	case set && v == cfg.Allowed:
		d.OptIn = store.OptInAllowed
	case set && v != cfg.NotAllowed:
		d.Reason = fmt.Sprintf("Unknown value %d in %s; treated as Not Allowed", v, cfg.OptInColumn)
		return d, nil
	}
	if d.OptIn != store.OptInAllowed {
		return d, nil
	}
	switch {
	case r.StateCode != dataverse.StateActive:
		d.Reason = "Not synced: the resource is inactive"
	case r.ResourceType != dataverse.ResourceTypeUser:
		d.Reason = "Not synced: only resources of type User have an Outlook calendar"
	case r.UserID == "" || u == nil:
		d.Reason = "Not synced: the resource has no user"
	case u.IsDisabled:
		d.Reason = "Not synced: the user is disabled"
	case u.AADObjectID == "":
		d.Reason = "Not synced: the user has no Microsoft Entra ID (azureactivedirectoryobjectid)"
	default:
		d.Subscribe = true
		d.Mailbox = u.AADObjectID
		d.UPN = u.DomainName
		if d.UPN == "" {
			d.UPN = u.InternalEmailAddress
		}
	}
	return d, nil
}

// EnrollmentColumns are the bookableresource columns whose change can
// change enrollment. The webhook step filters on them, and an update that
// touches none of them (our own status write-back above all) is an echo.
func EnrollmentColumns(optInColumn string) []string {
	return []string{optInColumn, "statecode", "userid", "resourcetype"}
}

// StatusText is what the status column says about a subscription.
func StatusText(s store.Subscription) string {
	return "Subscribed until " + s.ExpiresAt.UTC().Format("2006-01-02 15:04") + " UTC"
}

// Reconcile reads one resource from Dataverse and makes the world match it:
// subscribe, unsubscribe, and write the outcome to the status column.
func (e *Enroller) Reconcile(ctx context.Context, resourceID string) error {
	defer e.locks.Lock(resourceID)()
	return e.reconcile(ctx, resourceID)
}

func (e *Enroller) reconcile(ctx context.Context, resourceID string) error {
	var r dataverse.BookableResource
	q := dataverse.Query{Select: e.resourceSelect()}
	err := e.dv.Get(ctx, dataverse.SetResources, resourceID, q, &r)
	if errors.Is(err, dataverse.ErrNotFound) {
		return e.unenroll(ctx, resourceID)
	}
	if err != nil {
		return fmt.Errorf("reconcile resource %s: %w", resourceID, err)
	}
	return e.apply(ctx, r)
}

// ReconcileAll is the poll fallback: every resource that is opted in, or
// that we watch, is reconciled, by a pool of EnrollConfig.Workers. It
// returns the first error after trying all, or ctx's error once ctx ends
// (then it stops handing out work and returns when the running
// reconciliations have returned).
func (e *Enroller) ReconcileAll(ctx context.Context) error {
	pool := newPool(ctx, e.workers())
	defer pool.close() // on every return: no worker outlives the call
	seen := map[string]bool{}
	q := dataverse.Query{
		Select: e.resourceSelect(),
		Filter: dataverse.Eq(e.cfg.OptInColumn, dataverse.Int(int64(e.cfg.Allowed))),
	}
	// The pool's queue is unbuffered, so the page callback blocks until a
	// worker is free: Dataverse's pages are consumed as fast as resources are
	// reconciled, and at most Workers decoded rows are held at a time.
	err := e.dv.List(ctx, dataverse.SetResources, q, func(raw json.RawMessage) error {
		var r dataverse.BookableResource
		if err := r.UnmarshalJSON(raw); err != nil {
			return fmt.Errorf("decode bookableresource: %w", err)
		}
		seen[r.ID] = true
		return pool.submit(func(ctx context.Context) error {
			defer e.locks.Lock(r.ID)()
			return e.apply(ctx, r)
		})
	})
	if err != nil {
		return errors.Join(fmt.Errorf("poll opted-in resources: %w", err), pool.close())
	}
	known, err := e.store.ListResources(ctx)
	if err != nil {
		return errors.Join(fmt.Errorf("poll: list known resources: %w", err), pool.close())
	}
	for _, k := range known {
		if seen[k.ID] || k.OptIn != store.OptInAllowed {
			continue
		}
		// Opted in when we last looked, not any more (or deleted).
		if err := pool.submit(func(ctx context.Context) error { return e.Reconcile(ctx, k.ID) }); err != nil {
			break // ctx ended; close reports it
		}
	}
	if err := pool.close(); err != nil {
		return err
	}
	return ctx.Err()
}

func (e *Enroller) workers() int {
	if e.cfg.Workers <= 0 {
		return DefaultEnrollWorkers
	}
	return e.cfg.Workers
}

func (e *Enroller) resourceSelect() []string {
	sel := append([]string{}, dataverse.BookableResourceSelect...)
	sel = append(sel, e.cfg.OptInColumn)
	if e.cfg.StatusColumn != "" {
		sel = append(sel, e.cfg.StatusColumn)
	}
	return sel
}

func (e *Enroller) apply(ctx context.Context, r dataverse.BookableResource) error {
	var user *dataverse.SystemUser
	if r.UserID != "" {
		var u dataverse.SystemUser
		err := e.dv.Get(ctx, dataverse.SetSystemUsers, r.UserID, dataverse.Query{Select: dataverse.SystemUserSelect}, &u)
		switch {
		case err == nil:
			user = &u
		case errors.Is(err, dataverse.ErrNotFound):
		default:
			return fmt.Errorf("reconcile resource %s: read user %s: %w", r.ID, r.UserID, err)
		}
	}
	d, err := Decide(e.cfg, r, user)
	if err != nil {
		return fmt.Errorf("reconcile resource %s: %w", r.ID, err)
	}
	prev, err := e.store.GetResource(ctx, r.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("reconcile resource %s: %w", r.ID, err)
	}
	rec := store.Resource{ID: r.ID, Name: r.Name, Mailbox: d.Mailbox, UPN: d.UPN, OptIn: d.OptIn,
		Active: r.StateCode == dataverse.StateActive, LastStatusText: prev.LastStatusText}
	if rec.Mailbox == "" {
		rec.Mailbox = prev.Mailbox // keep it, so the old mailbox can still be unsubscribed
	}
	if err := e.store.UpsertResource(ctx, rec); err != nil {
		return fmt.Errorf("reconcile resource %s: %w", r.ID, err)
	}
	current, _, _ := r.Text(e.cfg.StatusColumn)
	if !d.Subscribe {
		if prev.Mailbox != "" {
			if err := e.mgr.Remove(ctx, prev.Mailbox); err != nil {
				return e.writeStatus(ctx, r.ID, current, "Error: could not remove the subscription: "+short(err), err)
			}
		}
		text := d.Reason
		if text == "" && prev.LastStatusText != nil {
			text = "Not synced"
		}
		if text == "" {
			return nil // never enrolled, nothing to say
		}
		return e.writeStatus(ctx, r.ID, current, text, nil)
	}
	if prev.Mailbox != "" && prev.Mailbox != d.Mailbox {
		// The resource now points at another user: stop watching the old mailbox.
		if err := e.mgr.Remove(ctx, prev.Mailbox); err != nil {
			return fmt.Errorf("reconcile resource %s: %w", r.ID, err)
		}
	}
	sub, err := e.mgr.Ensure(ctx, r.ID, d.Mailbox)
	if err != nil {
		return e.writeStatus(ctx, r.ID, current, "Error: "+describe(err), err)
	}
	return e.writeStatus(ctx, r.ID, current, StatusText(sub), nil)
}

func (e *Enroller) unenroll(ctx context.Context, resourceID string) error {
	prev, err := e.store.GetResource(ctx, resourceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unenroll %s: %w", resourceID, err)
	}
	if prev.Mailbox != "" {
		if err := e.mgr.Remove(ctx, prev.Mailbox); err != nil {
			return fmt.Errorf("unenroll %s: %w", resourceID, err)
		}
	}
	prev.OptIn = store.OptInNotAllowed
	prev.Active = false
	return e.store.UpsertResource(ctx, prev)
}

// ReportRenewalFailure tells the admin who opted the resource in, in its
// status column, that renewal keeps failing (the manager's OnAlert).
func (e *Enroller) ReportRenewalFailure(ctx context.Context, sub store.Subscription, cause error) {
	text := fmt.Sprintf("Error: subscription renewal failing (%d attempts); expires %s UTC",
		sub.RenewFailures, sub.ExpiresAt.UTC().Format("2006-01-02 15:04"))
	current := ""
	if r, err := e.store.GetResource(ctx, sub.ResourceID); err == nil && r.LastStatusText != nil {
		current = *r.LastStatusText
	}
	if err := e.writeStatus(ctx, sub.ResourceID, current, text, nil); err != nil {
		e.log.Error("write renewal alert to the status column", "resource", sub.ResourceID, "err", err, "renew_err", cause)
	}
}

// writeStatus writes text to the status column when it differs from what is
// there, and records it; cause is returned (wrapped) so the job retries.
func (e *Enroller) writeStatus(ctx context.Context, resourceID, current, text string, cause error) error {
	if e.cfg.StatusColumn != "" && current != text {
		if len(text) > 400 { // the column's documented max length
			text = text[:400]
		}
		body := map[string]any{e.cfg.StatusColumn: text}
		if err := e.dv.Update(ctx, dataverse.SetResources, resourceID, body, "*"); err != nil {
			return errors.Join(cause, fmt.Errorf("write status of %s: %w", resourceID, err))
		}
	}
	if _, err := e.store.SetResourceStatusText(ctx, resourceID, text); err != nil {
		return errors.Join(cause, err)
	}
	if cause != nil {
		return fmt.Errorf("reconcile resource %s: %w", resourceID, cause)
	}
	return nil
}

// describe turns a Graph error into a short sentence for the status column.
func describe(err error) string {
	var ge *graph.Error
	if errors.As(err, &ge) {
		switch {
		case ge.StatusCode == 403 || ge.Code == "ErrorAccessDenied":
			return "Graph denied access to this mailbox (check Calendars.ReadWrite consent and any application access policy)"
		case ge.StatusCode == 404 || ge.Code == "MailboxNotEnabledForRESTAPI" || ge.Code == "ResourceNotFound":
			return "Graph cannot serve this mailbox (no Exchange Online mailbox?)"
		case ge.StatusCode == 429:
			return "Graph is throttling subscription requests; the next poll retries"
		case ge.StatusCode == 400 && ge.Code == "ValidationError":
			return "Graph could not validate our notification URL (is public_url reachable from the internet?)"
		}
		return fmt.Sprintf("Graph %d %s", ge.StatusCode, ge.Code)
	}
	return short(err)
}

func short(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
