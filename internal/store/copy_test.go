package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bookingsync/bookingsync/internal/store"
	"github.com/bookingsync/bookingsync/internal/store/storetest"
)

// TestCopy fills a SQLite store through the store's methods, copies it into
// a fresh store of each backend (the PostgreSQL one skips without
// BOOKINGSYNC_TEST_POSTGRES_URL) and compares everything read back.
func TestCopy(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run("sqlite to "+b.Name, func(t *testing.T) {
			t.Parallel()
			// Open the target first: it skips before the source is filled.
			dst := b.New(t)
			src := storetest.NewSQLite(t)
			testCopy(t, src, dst)
		})
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

type snapshot struct {
	Resources     []store.Resource
	Subscriptions []store.Subscription
	Links         []store.Link
	SyncState     map[string]string
	SyncUpdated   map[string]time.Time
	Conflicts     []store.Conflict
	GuardPasses   []store.GuardPass
	Audit         []store.AuditEntry
	Pending       []store.Notification
	Dead          []store.Notification
}

var syncKeys = []string{
	store.SyncKeyDataverseToken, store.SyncKeyDataverseCatchup,
	store.SyncKeyDeltaToken("mbx-1"), store.SyncKeyDeltaToken("mbx-2"), store.SyncKeyMailboxCatchup("mbx-1"),
}

func read(t *testing.T, s *store.Store) snapshot {
	t.Helper()
	ctx := context.Background()
	db := s.DB()
	var err error
	var sn snapshot
	fatal := func() {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sn.Resources, err = s.ListResources(ctx, db, store.ResourceFilter{})
	fatal()
	sn.Subscriptions, err = s.ListSubscriptions(ctx, db)
	fatal()
	sn.Links, err = s.ListLinks(ctx, db)
	fatal()
	sn.SyncState, sn.SyncUpdated = map[string]string{}, map[string]time.Time{}
	for _, k := range syncKeys {
		v, at, err := s.GetSyncState(ctx, db, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sn.SyncState[k], sn.SyncUpdated[k] = v, at
	}
	sn.Conflicts, err = s.ListConflicts(ctx, db, store.ConflictFilter{})
	fatal()
	sn.GuardPasses, err = s.ListGuardPasses(ctx, db, store.GuardPassFilter{})
	fatal()
	sn.Audit, err = s.QueryAudit(ctx, db, store.AuditFilter{Limit: 1000})
	fatal()
	sn.Pending, err = s.ListUnprocessedNotifications(ctx, s.InboxDB(), 1000)
	fatal()
	sn.Dead, err = s.ListDeadNotifications(ctx, s.InboxDB(), 1000)
	fatal()
	return sn
}

func fill(t *testing.T, s *store.Store) (processedID int64) {
	t.Helper()
	ctx := context.Background()
	db := s.DB()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 123456000, time.UTC)

	must[store.Resource](t)(s.UpsertResource(ctx, db, store.Resource{ID: "r1", Name: "Ada", Mailbox: "mbx-1", UPN: "ada@example.test", OptIn: store.OptInAllowed, Active: true}))
	must[store.Resource](t)(s.UpsertResource(ctx, db, store.Resource{ID: "r2", Name: "Bob", Mailbox: "mbx-2", UPN: "bob@example.test", OptIn: store.OptInNotAllowed}))
	must[store.Resource](t)(s.UpsertResource(ctx, db, store.Resource{ID: "r3", Name: "Cy"}))
	must[bool](t)(s.SetResourceStatusText(ctx, db, "r1", "Syncing"))

	renewed := t0.Add(time.Hour)
	must[store.Subscription](t)(s.InsertSubscription(ctx, db, store.Subscription{
		ID: "sub-1", ResourceID: "r1", Mailbox: "mbx-1", Resource: "/users/mbx-1/events", ChangeTypes: "created,updated,deleted",
		ExpiresAt: t0.Add(72 * time.Hour), ClientStateHash: store.HashClientState("secret-1"), Lifetime: 72 * time.Hour,
		CreatedAt: t0, LastRenewedAt: &renewed,
	}))
	must[store.Subscription](t)(s.InsertSubscription(ctx, db, store.Subscription{
		ID: "sub-2", ResourceID: "r2", Mailbox: "mbx-2", Resource: "/users/mbx-2/events", ChangeTypes: "created",
		ExpiresAt: t0.Add(24 * time.Hour), ClientStateHash: store.HashClientState("secret-2"), Lifetime: 24 * time.Hour,
	}))
	if err := s.RecordSubscriptionRenewFailure(ctx, db, "sub-2", "429 too many requests"); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSubscriptions(ctx, db, []string{"sub-1"}, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}

	l1 := must[store.Link](t)(s.InsertLink(ctx, db, store.Link{
		BookingID: "b1", ResourceID: "r1", Mailbox: "mbx-1", EventID: "e1", BookingVersion: 1001, BookingHash: "bh1",
		EventChangeKey: "ck1", EventETag: `W/"1"`, EventHash: "eh1", AgreedStart: t0, AgreedEnd: t0.Add(90 * time.Minute),
	}))
	l1.EventETag, l1.BookingVersion = `W/"2"`, 1002
	l1 = must[store.Link](t)(s.UpdateLink(ctx, db, l1, l1.Version))
	must[store.Link](t)(s.UpdateLink(ctx, db, l1, l1.Version)) // version 3
	must[store.Link](t)(s.InsertLink(ctx, db, store.Link{
		BookingID: "b2", ResourceID: "r1", Mailbox: "mbx-1", EventID: store.PendingEventID("b2"), CreateTxID: "tx-b2",
	}))
	must[store.Link](t)(s.InsertLink(ctx, db, store.Link{
		BookingID: "b3", ResourceID: "r2", Mailbox: "mbx-2", EventID: "e3", Origin: "outlook", Detached: true,
		AgreedStart: t0.Add(24 * time.Hour), AgreedEnd: t0.Add(25 * time.Hour),
	}))

	for _, kv := range [][2]string{
		{store.SyncKeyDataverseToken, "1234567!11/27/2026 09:00:00"},
		{store.SyncKeyDataverseCatchup, t0.Format(time.RFC3339)},
		{store.SyncKeyDeltaToken("mbx-1"), "https://graph.example.test/delta?$deltatoken=abc"},
		{store.SyncKeyDeltaToken("mbx-2"), "https://graph.example.test/delta?$deltatoken=def"},
		{store.SyncKeyMailboxCatchup("mbx-1"), t0.Format(time.RFC3339)},
	} {
		if err := s.SetSyncState(ctx, db, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}

	must[store.Conflict](t)(s.OpenConflict(ctx, db, store.Conflict{BookingID: "b1", ResourceID: "r1", Mailbox: "mbx-1", EventID: "e1", Rule: "C5", Reason: "both changed", DetectedAt: t0}))
	must[store.Conflict](t)(s.ResolveConflict(ctx, db, "b1", "d365 kept by admin"))
	must[store.Conflict](t)(s.OpenConflict(ctx, db, store.Conflict{BookingID: "b1", ResourceID: "r1", Mailbox: "mbx-1", EventID: "e1", Rule: "C6", Reason: "again"}))

	p := must[store.GuardPass](t)(s.InsertGuardPass(ctx, db, store.GuardPass{Scope: "mbx-1", Side: store.SideOutlook, Deletes: 12, Linked: 20, Plan: json.RawMessage(`[{"rule":"D3"}]`)}))
	must[store.GuardPass](t)(s.SetGuardPassStatus(ctx, db, p.ID, store.GuardHeld, store.GuardApproved, "admin"))
	must[store.GuardPass](t)(s.InsertGuardPass(ctx, db, store.GuardPass{Scope: "mbx-2", Side: store.SideDataverse, Deletes: 5, Linked: 6, Plan: json.RawMessage(`[]`)}))

	for i, e := range []store.AuditEntry{
		{At: t0, ResourceID: "r1", BookingID: "b1", EventID: "e1", Side: store.SideOutlook, Action: "create_event", Reason: "new booking",
			After: json.RawMessage(`{"subject":"Job"}`), Outcome: "ok"},
		{At: t0.Add(time.Minute), ResourceID: "r1", BookingID: "b1", Side: store.SideDataverse, Action: "update_booking",
			Before: json.RawMessage(`{"start":"09:00"}`), After: json.RawMessage(`{"start":"10:00"}`), Outcome: "failed", Error: "412"},
		{At: t0.Add(2 * time.Minute), Action: "skip", Outcome: "skipped"},
	} {
		if _, err := s.InsertAudit(ctx, db, e); err != nil {
			t.Fatalf("audit %d: %v", i, err)
		}
	}

	if ok := must[bool](t)(s.TryLease(ctx, db, "booking:b1", "instance-a", time.Hour)); !ok {
		t.Fatal("lease not taken")
	}

	note := func(item, etag string) store.Notification {
		return store.Notification{Source: store.SourceGraph, SubscriptionID: "sub-1", Mailbox: "mbx-1", ItemID: item,
			ChangeType: "updated", ETag: etag, Payload: []byte(`{"id":"` + item + `"}`), ReceivedAt: t0}
	}
	ids := must[store.InsertResult](t)(s.InsertNotifications(ctx, s.InboxDB(), []store.Notification{
		note("e1", "1"), note("e2", "1"), note("e3", "1"), note("e4", "1"),
		{Source: store.SourceDataverse, ItemID: "b9", ChangeType: "Update", ETag: "77", Payload: []byte(`{}`)},
	})).IDs
	// e1: processed (history, skipped). e2: dead. e3: failed once, retry
	// later. e4 and the Dataverse row: pending, e4 claimed by the stopped
	// service.
	must[int64](t)(s.MarkNotificationsProcessed(ctx, s.InboxDB(), ids[:1], t0.Add(time.Second)))
	claimed := must[[]store.Notification](t)(s.ClaimNotifications(ctx, "old", 3, time.Hour))
	if len(claimed) != 3 || claimed[0].ID != ids[1] {
		t.Fatalf("claimed %+v", claimed)
	}
	must[int64](t)(s.FailNotifications(ctx, "old", []store.NotificationFailure{
		{ID: ids[1], Error: "gone for good"},
		{ID: ids[2], Error: "try later", RetryAt: time.Now().Add(time.Hour)},
	}))
	return ids[0]
}

func testCopy(t *testing.T, src, dst *store.Store) {
	ctx := context.Background()
	processedID := fill(t, src)
	want := read(t, src)
	if len(want.Resources) != 3 || len(want.Subscriptions) != 2 || len(want.Links) != 3 || len(want.SyncState) != 5 ||
		len(want.Conflicts) != 2 || len(want.GuardPasses) != 2 || len(want.Audit) != 3 || len(want.Pending) != 3 || len(want.Dead) != 1 {
		t.Fatalf("source not filled as intended: %+v", want)
	}

	wantCounts := map[string]int64{
		"resources": 3, "subscriptions": 2, "links": 3, "sync_state": 5, "conflicts": 2,
		"guard_passes": 2, "audit": 3, "notifications": 4,
	}
	checkReport := func(rep store.CopyReport, dry bool) {
		t.Helper()
		if rep.DryRun != dry || rep.SkippedProcessedNotifications != 1 || len(rep.Tables) != len(wantCounts) {
			t.Errorf("report = %+v", rep)
		}
		for table, n := range wantCounts {
			if got := rep.Rows(table); got != n {
				t.Errorf("report: %s = %d rows, want %d", table, got, n)
			}
		}
	}

	// A dry run counts and writes nothing.
	rep, err := store.Copy(ctx, src, dst, store.CopyOptions{DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	checkReport(rep, true)
	if got := read(t, dst); len(got.Links) != 0 || len(got.Resources) != 0 || len(got.Audit) != 0 {
		t.Fatalf("dry run wrote: %+v", got)
	}

	// Small batches so multi-batch INSERTs are exercised.
	rep, err = store.Copy(ctx, src, dst, store.CopyOptions{BatchRows: 2})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	checkReport(rep, false)

	got := read(t, dst)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("target differs from source (-source +target):\n%s", diff)
	}
	for i := range want.Links { // the same, spelled out for the fields that matter most
		w, g := want.Links[i], got.Links[i]
		if !w.AgreedStart.Equal(g.AgreedStart) || !w.AgreedEnd.Equal(g.AgreedEnd) || w.CreateTxID != g.CreateTxID ||
			w.Origin != g.Origin || w.Detached != g.Detached || w.Version != g.Version || w.BookingVersion != g.BookingVersion {
			t.Errorf("link %s: source %+v, target %+v", w.BookingID, w, g)
		}
	}
	if got.Links[0].Version != 3 || !got.Links[2].Detached || got.Links[1].CreateTxID != "tx-b2" {
		t.Errorf("links lost state: %+v", got.Links)
	}
	for _, sub := range got.Subscriptions {
		secret := map[string]string{"sub-1": "secret-1", "sub-2": "secret-2"}[sub.ID]
		if !sub.ClientStateMatches(secret) {
			t.Errorf("subscription %s: clientState hash not kept", sub.ID)
		}
	}
	if n := must[[]store.Notification](t)(dst.GetNotifications(ctx, dst.InboxDB(), []int64{processedID})); len(n) != 0 {
		t.Errorf("processed notification copied: %+v", n)
	}

	// The stopped service's claim was dropped: every pending row is
	// claimable at once except the one waiting for its retry time.
	claimed := must[[]store.Notification](t)(dst.ClaimNotifications(ctx, "new", 10, time.Minute))
	if len(claimed) != 2 {
		t.Errorf("claimed %d rows on the target, want 2 (the claimed one and the Dataverse one): %+v", len(claimed), claimed)
	}

	// Leases are not copied.
	if ok := must[bool](t)(dst.TryLease(ctx, dst.DB(), "booking:b1", "instance-b", time.Minute)); !ok {
		t.Error("lease of the source was copied")
	}

	// New rows get ids above the copied ones.
	id := must[int64](t)(dst.InsertAudit(ctx, dst.DB(), store.AuditEntry{Action: "skip", Outcome: "ok"}))
	if id <= want.Audit[0].ID {
		t.Errorf("new audit id %d, want > %d", id, want.Audit[0].ID)
	}
	c := must[store.Conflict](t)(dst.OpenConflict(ctx, dst.DB(), store.Conflict{BookingID: "b3", Rule: "C5"}))
	if c.ID <= max(want.Conflicts[0].ID, want.Conflicts[1].ID) {
		t.Errorf("new conflict id %d, want above the copied ones %+v", c.ID, want.Conflicts)
	}
	res := must[store.InsertResult](t)(dst.InsertNotifications(ctx, dst.InboxDB(), []store.Notification{
		{Source: store.SourceDataverse, ItemID: "b10", ChangeType: "Update", ETag: "1", Payload: []byte(`{}`)},
	}))
	if res.Inserted != 1 || res.IDs[0] <= want.Pending[len(want.Pending)-1].ID {
		t.Errorf("new notification id %v, want > %d", res.IDs, want.Pending[len(want.Pending)-1].ID)
	}

	// A second copy into the same target is refused, naming what it holds.
	_, err = store.Copy(ctx, src, dst, store.CopyOptions{})
	if !errors.Is(err, store.ErrTargetNotEmpty) {
		t.Fatalf("second Copy: err = %v, want ErrTargetNotEmpty", err)
	}
	for _, s := range []string{"resources (3)", "links (3)", "audit (4)"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("refusal %q does not say %q", err, s)
		}
	}
	if after := read(t, dst); len(after.Links) != 3 || len(after.Audit) != 4 {
		t.Errorf("refused copy changed the target: %d links, %d audit entries", len(after.Links), len(after.Audit))
	}
}
