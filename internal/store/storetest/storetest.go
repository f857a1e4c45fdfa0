package storetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bookingsync/bookingsync/internal/store"
)

// Exercise runs the store conformance suite against fresh stores from
// newStore (one per subtest).
func Exercise(t *testing.T, newStore func(t testing.TB) *store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *store.Store)
	}{
		{"Migrations", testMigrations},
		{"InTx", testInTx},
		{"Resources", testResources},
		{"ResourceStatusText", testResourceStatusText},
		{"Subscriptions", testSubscriptions},
		{"NotificationDedupe", testNotificationDedupe},
		{"NotificationProcessing", testNotificationProcessing},
		{"Links", testLinks},
		{"Leases", testLeases},
		{"LinkConcurrentCAS", testLinkConcurrentCAS},
		{"SyncState", testSyncState},
		{"Audit", testAudit},
		{"GuardPasses", testGuardPasses},
		{"Conflicts", testConflicts},
		{"ConflictsConcurrentOpen", testConflictsConcurrentOpen},
		{"IntakeConcurrent", testIntakeConcurrent},
		{"IntakeCoalesces", testIntakeCoalesces},
		{"IntakeEnqueueFailureRollsBack", testIntakeEnqueueFailure},
		{"IntakeDBClosed", testIntakeDBClosed},
		{"IntakeStopDrains", testIntakeStopDrains},
		{"IntakeAbandoned", testIntakeAbandoned},
		{"IntakeValidation", testIntakeValidation},
		{"IntakeAppliesMarks", testIntakeAppliesMarks},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 123456000, time.UTC)

// must unwraps (v, err) in test bodies; a failure panics, which fails the
// test with a stack trace pointing at the call.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func testMigrations(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for i := range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate run %d: %v", i+2, err)
		}
	}
	if got := must(s.SchemaVersion(ctx)); got != store.LatestSchemaVersion() {
		t.Errorf("SchemaVersion = %d, want %d", got, store.LatestSchemaVersion())
	}
	var rows int
	if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_version`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != store.LatestSchemaVersion() {
		t.Errorf("schema_version has %d rows after repeated migrations, want %d", rows, store.LatestSchemaVersion())
	}
	for _, table := range []string{"resources", "subscriptions", "links", "sync_state", "audit", "river_job", "river_migration"} {
		var n int
		if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
	// The inbox: its own file on SQLite, the main database on PostgreSQL.
	if got := must(s.InboxSchemaVersion(ctx)); got != store.LatestInboxSchemaVersion() {
		t.Errorf("InboxSchemaVersion = %d, want %d", got, store.LatestInboxSchemaVersion())
	}
	var n int
	if err := s.InboxDB().QueryRowContext(ctx, `SELECT COUNT(*) FROM notifications`).Scan(&n); err != nil {
		t.Errorf("inbox table notifications: %v", err)
	}
	if s.Backend() == store.BackendSQLite {
		if s.InboxDB() == s.DB() {
			t.Error("SQLite inbox shares the main database's writer")
		}
		if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM notifications`).Scan(&n); err == nil {
			t.Error("SQLite main database has a notifications table; the inbox has its own file")
		}
	}
}

func testInTx(t *testing.T, s *store.Store) {
	ctx := context.Background()
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		key     string
		fn      func(tx *sql.Tx) error
		wantErr error
		stored  bool
	}{
		{"commit", "k-commit", nil, nil, true},
		{"error rolls back", "k-err", func(*sql.Tx) error { return errBoom }, errBoom, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.InTx(ctx, func(tx *sql.Tx) error {
				if err := s.SetSyncState(ctx, tx, tt.key, "v"); err != nil {
					return err
				}
				if tt.fn != nil {
					return tt.fn(tx)
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("InTx error = %v, want %v", err, tt.wantErr)
			}
			_, _, err = s.GetSyncState(ctx, s.DB(), tt.key)
			if stored := err == nil; stored != tt.stored {
				t.Errorf("stored = %v (err %v), want %v", stored, err, tt.stored)
			}
		})
	}
	t.Run("panic rolls back", func(t *testing.T) {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("panic was swallowed")
				}
			}()
			_ = s.InTx(ctx, func(tx *sql.Tx) error {
				if err := s.SetSyncState(ctx, tx, "k-panic", "v"); err != nil {
					return err
				}
				panic("boom")
			})
		}()
		if _, _, err := s.GetSyncState(ctx, s.DB(), "k-panic"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after panic: err = %v, want ErrNotFound", err)
		}
	})
}

func testResources(t *testing.T, s *store.Store) {
	ctx := context.Background()
	db := s.DB()
	in := []store.Resource{
		{ID: "r1", Name: "Ann", Mailbox: "u1", UPN: "ann@x", OptIn: store.OptInAllowed, Active: true},
		{ID: "r2", Name: "Bob", Mailbox: "u2", UPN: "bob@x", OptIn: store.OptInNotAllowed, Active: true},
		{ID: "r3", Name: "Cy", Mailbox: "u3", Active: false}, // OptIn defaults to unknown
	}
	for _, r := range in {
		must(s.UpsertResource(ctx, db, r))
	}
	first := must(s.GetResource(ctx, db, "r1"))
	upd := in[0]
	upd.Name, upd.OptIn = "Ann B", store.OptInNotAllowed
	got := must(s.UpsertResource(ctx, db, upd))
	if got.Name != "Ann B" || got.OptIn != store.OptInNotAllowed || !got.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("after update: %+v (created_at was %v)", got, first.CreatedAt)
	}
	if _, err := s.GetResource(ctx, db, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetResource(nope) err = %v, want ErrNotFound", err)
	}

	tests := []struct {
		name   string
		filter store.ResourceFilter
		want   []string
	}{
		{"all", store.ResourceFilter{}, []string{"r1", "r2", "r3"}},
		{"active", store.ResourceFilter{ActiveOnly: true}, []string{"r1", "r2"}},
		{"not allowed", store.ResourceFilter{OptIn: store.OptInNotAllowed}, []string{"r1", "r2"}},
		{"unknown", store.ResourceFilter{OptIn: store.OptInUnknown}, []string{"r3"}},
		{"mailbox", store.ResourceFilter{Mailbox: "u2"}, []string{"r2"}},
		{"none", store.ResourceFilter{OptIn: store.OptInAllowed}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []string
			for _, r := range must(s.ListResources(ctx, db, tt.filter)) {
				ids = append(ids, r.ID)
			}
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				t.Errorf("ListResources(%+v) (-want +got):\n%s", tt.filter, diff)
			}
		})
	}

	if err := s.DeleteResource(ctx, db, "r3"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteResource(ctx, db, "r3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteResource err = %v, want ErrNotFound", err)
	}
}

func testResourceStatusText(t *testing.T, s *store.Store) {
	ctx := context.Background()
	db := s.DB()
	must(s.UpsertResource(ctx, db, store.Resource{ID: "r1", Active: true}))
	if r := must(s.GetResource(ctx, db, "r1")); r.LastStatusText != nil {
		t.Fatalf("new resource has status text %q", *r.LastStatusText)
	}
	steps := []struct {
		id          string
		text        string
		wantChanged bool
		wantErr     error
	}{
		{"r1", "Syncing", true, nil},
		{"r1", "Syncing", false, nil},
		{"r1", "", true, nil},
		{"r1", "", false, nil},
		{"r1", "Error: mailbox not found", true, nil},
		{"missing", "x", false, store.ErrNotFound},
	}
	for i, st := range steps {
		changed, err := s.SetResourceStatusText(ctx, db, st.id, st.text)
		if !errors.Is(err, st.wantErr) || changed != st.wantChanged {
			t.Errorf("step %d SetResourceStatusText(%q, %q) = %v, %v; want %v, %v", i, st.id, st.text, changed, err, st.wantChanged, st.wantErr)
		}
	}
	r := must(s.GetResource(ctx, db, "r1"))
	if r.LastStatusText == nil || *r.LastStatusText != "Error: mailbox not found" {
		t.Errorf("LastStatusText = %v", r.LastStatusText)
	}
	// Upserting directory data must not forget what was written back.
	must(s.UpsertResource(ctx, db, store.Resource{ID: "r1", Name: "renamed", Active: true}))
	if r := must(s.GetResource(ctx, db, "r1")); r.LastStatusText == nil || *r.LastStatusText != "Error: mailbox not found" {
		t.Errorf("after upsert LastStatusText = %v", r.LastStatusText)
	}
}

func testSubscriptions(t *testing.T, s *store.Store) {
	ctx := context.Background()
	db := s.DB()
	must(s.UpsertResource(ctx, db, store.Resource{ID: "r1", Mailbox: "u1", Active: true}))
	renewedAt := t0.Add(-time.Hour)
	sub := store.Subscription{
		ID: "sub-1", ResourceID: "r1", Mailbox: "u1", Resource: "/users/u1/events", ChangeTypes: "created,updated,deleted",
		ExpiresAt: t0.Add(72 * time.Hour), ClientStateHash: store.HashClientState("s3cret"), Lifetime: 72 * time.Hour,
		CreatedAt: t0.Add(-2 * time.Hour), LastRenewedAt: &renewedAt,
	}
	got := must(s.InsertSubscription(ctx, db, sub))
	if diff := cmp.Diff(sub, got); diff != "" {
		t.Errorf("InsertSubscription round trip (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sub, must(s.GetSubscription(ctx, db, "sub-1"))); diff != "" {
		t.Errorf("GetSubscription (-want +got):\n%s", diff)
	}
	if !got.ClientStateMatches("s3cret") || got.ClientStateMatches("s3cret ") || got.ClientStateMatches("") {
		t.Error("ClientStateMatches gives wrong answers")
	}

	errTests := []struct {
		name    string
		sub     store.Subscription
		wantErr error
	}{
		{"duplicate id", sub, store.ErrConflict},
		{"unknown resource", store.Subscription{ID: "sub-x", ResourceID: "nope", ExpiresAt: t0, ClientStateHash: store.HashClientState("x")}, nil},
		{"short hash", store.Subscription{ID: "sub-y", ResourceID: "r1", ExpiresAt: t0, ClientStateHash: []byte("x")}, nil},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.InsertSubscription(ctx, db, tt.sub)
			if err == nil {
				t.Fatal("InsertSubscription succeeded, want error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}

	sub2 := sub
	sub2.ID, sub2.ExpiresAt, sub2.LastRenewedAt = "sub-2", t0.Add(time.Hour), nil
	must(s.InsertSubscription(ctx, db, sub2))

	var ids []string
	for _, x := range must(s.ListSubscriptionsByMailbox(ctx, db, "u1")) {
		ids = append(ids, x.ID)
	}
	if diff := cmp.Diff([]string{"sub-1", "sub-2"}, ids); diff != "" {
		t.Errorf("ListSubscriptionsByMailbox (-want +got):\n%s", diff)
	}
	ids = nil
	for _, x := range must(s.ListSubscriptionsExpiringBefore(ctx, db, t0.Add(2*time.Hour))) {
		ids = append(ids, x.ID)
	}
	if diff := cmp.Diff([]string{"sub-2"}, ids); diff != "" {
		t.Errorf("ListSubscriptionsExpiringBefore (-want +got):\n%s", diff)
	}
	ids = nil
	for _, x := range must(s.ListSubscriptions(ctx, db)) {
		ids = append(ids, x.ID)
	}
	if diff := cmp.Diff([]string{"sub-2", "sub-1"}, ids); diff != "" {
		t.Errorf("ListSubscriptions, soonest expiry first (-want +got):\n%s", diff)
	}

	if err := s.RecordSubscriptionRenewFailure(ctx, db, "sub-2", "429"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordSubscriptionRenewFailure(ctx, db, "sub-2", "503"); err != nil {
		t.Fatal(err)
	}
	if x := must(s.GetSubscription(ctx, db, "sub-2")); x.RenewFailures != 2 || x.LastError != "503" {
		t.Errorf("after failures: RenewFailures=%d LastError=%q", x.RenewFailures, x.LastError)
	}
	if err := s.RecordSubscriptionRenewed(ctx, db, "sub-2", t0.Add(73*time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	x := must(s.GetSubscription(ctx, db, "sub-2"))
	if x.RenewFailures != 0 || x.LastError != "" || !x.ExpiresAt.Equal(t0.Add(73*time.Hour)) || x.LastRenewedAt == nil || !x.LastRenewedAt.Equal(t0) {
		t.Errorf("after renewal: %+v", x)
	}
	if err := s.TouchSubscriptions(ctx, db, []string{"sub-2", "unknown"}, t0); err != nil {
		t.Fatal(err)
	}
	if x := must(s.GetSubscription(ctx, db, "sub-2")); x.LastNotificationAt == nil || !x.LastNotificationAt.Equal(t0) {
		t.Errorf("LastNotificationAt = %v, want %v", x.LastNotificationAt, t0)
	}
	for _, id := range []string{"missing"} {
		if err := s.RecordSubscriptionRenewed(ctx, db, id, t0, t0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RecordSubscriptionRenewed(%s) err = %v", id, err)
		}
	}
	if err := s.DeleteSubscription(ctx, db, "sub-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSubscription(ctx, db, "sub-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteResource(ctx, db, "r1"); err == nil {
		t.Error("deleting a resource with subscriptions succeeded; want foreign key error")
	}
}

func graphNote(sub, item, change, etag string) store.Notification {
	return store.Notification{
		Source: store.SourceGraph, SubscriptionID: sub, Mailbox: "u1", ItemID: item, ChangeType: change, ETag: etag,
		Payload: []byte(fmt.Sprintf(`{"id":%q,"etag":%q}`, item, etag)), ReceivedAt: t0,
	}
}

func testNotificationDedupe(t *testing.T, s *store.Store) {
	ctx := context.Background()
	db := s.DB()
	withKey := func(n store.Notification, key string) store.Notification { n.DedupeKey = key; return n }
	dv := store.Notification{Source: store.SourceDataverse, ItemID: "b1", ChangeType: "Update", ETag: "1001", Payload: []byte(`{}`)}

	// Steps run in order against one store; wantNew is aligned with the batch.
	steps := []struct {
		name    string
		batch   []store.Notification
		wantNew []bool
	}{
		{"first delivery", []store.Notification{graphNote("s1", "e1", "updated", "W/1"), graphNote("s1", "e2", "updated", "W/1")}, []bool{true, true}},
		{"redelivery", []store.Notification{graphNote("s1", "e1", "updated", "W/1")}, []bool{false}},
		{"repeat within batch", []store.Notification{graphNote("s1", "e3", "created", "W/1"), graphNote("s1", "e3", "created", "W/1")}, []bool{true, false}},
		{"new etag", []store.Notification{graphNote("s1", "e1", "updated", "W/2")}, []bool{true}},
		{"other change type", []store.Notification{graphNote("s1", "e1", "deleted", "W/2")}, []bool{true}},
		{"other subscription", []store.Notification{graphNote("s2", "e1", "updated", "W/1")}, []bool{true}},
		{"mixed", []store.Notification{graphNote("s1", "e2", "updated", "W/1"), graphNote("s1", "e4", "updated", "W/1")}, []bool{false, true}},
		{"explicit key", []store.Notification{withKey(graphNote("s1", "e1", "updated", "W/1"), "lifecycle-1")}, []bool{true}},
		{"explicit key repeat", []store.Notification{withKey(graphNote("s1", "e9", "missed", ""), "lifecycle-1")}, []bool{false}},
		{"dataverse", []store.Notification{dv, dv}, []bool{true, false}},
		{"empty", nil, nil},
	}
	seen := map[int64]bool{}
	total := 0
	for _, st := range steps {
		res, err := s.InsertNotifications(ctx, db, st.batch)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		var gotNew []bool
		for _, id := range res.IDs {
			gotNew = append(gotNew, id != 0)
			if id != 0 {
				if seen[id] {
					t.Errorf("%s: id %d returned twice", st.name, id)
				}
				seen[id] = true
				total++
			}
		}
		if diff := cmp.Diff(st.wantNew, gotNew); diff != "" {
			t.Errorf("%s: new flags (-want +got):\n%s", st.name, diff)
		}
		if want := countTrue(st.wantNew); res.Inserted != want {
			t.Errorf("%s: Inserted = %d, want %d", st.name, res.Inserted, want)
		}
	}
	if n := must(s.CountUnprocessedNotifications(ctx, db)); n != int64(total) {
		t.Errorf("stored %d rows, want %d", n, total)
	}

	// A batch larger than one INSERT statement keeps ids aligned.
	big := make([]store.Notification, 1203)
	for i := range big {
		big[i] = graphNote("s3", fmt.Sprintf("e%d", i%1100), "updated", "W/1")
	}
	res := must(s.InsertNotifications(ctx, db, big))
	if res.Inserted != 1100 {
		t.Errorf("big batch Inserted = %d, want 1100", res.Inserted)
	}
	rows := must(s.GetNotifications(ctx, db, res.NewIDs()))
	if len(rows) != 1100 {
		t.Fatalf("GetNotifications returned %d rows, want 1100", len(rows))
	}
	byID := map[int64]store.Notification{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	for i, id := range res.IDs {
		if (id != 0) != (i < 1100) {
			t.Fatalf("big batch: index %d id %d", i, id)
		}
		if id != 0 && byID[id].ItemID != big[i].ItemID {
			t.Fatalf("big batch: id %d has item %q, want %q", id, byID[id].ItemID, big[i].ItemID)
		}
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func testNotificationProcessing(t *testing.T, s *store.Store) {
	ctx := context.Background()
	db := s.DB()
	in := []store.Notification{
		graphNote("s1", "e1", "updated", "W/1"),
		{Source: store.SourceGraphLifecycle, SubscriptionID: "s1", ChangeType: "reauthorizationRequired", DedupeKey: "lc-1", Payload: []byte{0xff, 0x00, '{'}, ReceivedAt: t0.Add(time.Second)},
		{Source: store.SourceDataverse, ItemID: "b1", ChangeType: "Create", ETag: "77", Payload: []byte(`{"a":1}`), ReceivedAt: t0.Add(2 * time.Second)},
	}
	ids := must(s.InsertNotifications(ctx, db, in)).IDs
	got := must(s.GetNotifications(ctx, db, append([]int64{999999}, ids...)))
	want := make([]store.Notification, len(in))
	for i, n := range in {
		n.ID = ids[i]
		if n.DedupeKey == "" {
			n.DedupeKey = store.NotificationDedupeKey(n)
		}
		want[i] = n
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetNotifications (-want +got):\n%s", diff)
	}

	if n := must(s.MarkNotificationsProcessed(ctx, db, ids[:2], t0.Add(time.Minute))); n != 2 {
		t.Errorf("MarkNotificationsProcessed = %d, want 2", n)
	}
	if n := must(s.MarkNotificationsProcessed(ctx, db, ids, t0.Add(2*time.Minute))); n != 1 {
		t.Errorf("second MarkNotificationsProcessed = %d, want 1 (already processed rows are left alone)", n)
	}
	got = must(s.GetNotifications(ctx, db, ids[:1]))
	if p := got[0].ProcessedAt; p == nil || !p.Equal(t0.Add(time.Minute)) {
		t.Errorf("ProcessedAt = %v, want %v", p, t0.Add(time.Minute))
	}
	if n := must(s.CountUnprocessedNotifications(ctx, db)); n != 0 {
		t.Errorf("unprocessed = %d, want 0", n)
	}

	extra := must(s.InsertNotifications(ctx, db, []store.Notification{graphNote("s1", "e5", "updated", "W/1")})).IDs
	unprocessed := must(s.ListUnprocessedNotifications(ctx, db, 10))
	if len(unprocessed) != 1 || unprocessed[0].ID != extra[0] {
		t.Errorf("ListUnprocessedNotifications = %+v", unprocessed)
	}
	if n := must(s.DeleteProcessedNotificationsBefore(ctx, db, t0.Add(1500*time.Millisecond))); n != 2 {
		t.Errorf("DeleteProcessedNotificationsBefore = %d, want 2", n)
	}
	// Forgetting the row forgets its dedupe key.
	if res := must(s.InsertNotifications(ctx, db, in[:1])); res.Inserted != 1 || res.IDs[0] <= extra[0] {
		t.Errorf("re-insert after retention: %+v (ids must not be reused, last was %d)", res, extra[0])
	}
}

func testLinks(t *testing.T, s *store.Store) {
	ctx := context.Background()
	db := s.DB()
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l := store.Link{BookingID: "b1", ResourceID: "r1", Mailbox: "u1", EventID: "ev1", BookingVersion: 1000, BookingHash: "bh1", EventChangeKey: "ck1", EventETag: "W/1", EventHash: "eh1",
		AgreedStart: t0, AgreedEnd: t0.Add(time.Hour)}
	got := must(s.InsertLink(ctx, db, l))
	if got.Version != 1 {
		t.Errorf("new link Version = %d, want 1", got.Version)
	}
	ignore := cmp.Options{cmp.FilterPath(func(p cmp.Path) bool {
		n := p.Last().String()
		return n == ".Version" || n == ".CreatedAt" || n == ".UpdatedAt"
	}, cmp.Ignore())}
	if diff := cmp.Diff(l, must(s.GetLinkByEvent(ctx, db, "u1", "ev1")), ignore); diff != "" {
		t.Errorf("GetLinkByEvent (-want +got):\n%s", diff)
	}

	other := l
	other.BookingID = "b2"
	insertTests := []struct {
		name string
		link store.Link
	}{
		{"same booking", l},
		{"same event other booking", other},
	}
	for _, tt := range insertTests {
		if _, err := s.InsertLink(ctx, db, tt.link); !errors.Is(err, store.ErrConflict) {
			t.Errorf("InsertLink %s err = %v, want ErrConflict", tt.name, err)
		}
	}
	other.EventID = "ev2"
	must(s.InsertLink(ctx, db, other))

	upd := l
	upd.BookingVersion, upd.EventChangeKey = 1001, "ck2"
	updTests := []struct {
		name     string
		link     store.Link
		expected int64
		wantVer  int64
		wantErr  error
	}{
		{"current version", upd, 1, 2, nil},
		{"stale version", upd, 1, 0, store.ErrConflict},
		{"next version", upd, 2, 3, nil},
		{"missing link", store.Link{BookingID: "nope", Mailbox: "u1", EventID: "x"}, 1, 0, store.ErrNotFound},
		{"event taken", func() store.Link { x := upd; x.EventID = "ev2"; return x }(), 3, 0, store.ErrConflict},
	}
	for _, tt := range updTests {
		got, err := s.UpdateLink(ctx, db, tt.link, tt.expected)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("UpdateLink %s err = %v, want %v", tt.name, err, tt.wantErr)
			continue
		}
		if err == nil && got.Version != tt.wantVer {
			t.Errorf("UpdateLink %s Version = %d, want %d", tt.name, got.Version, tt.wantVer)
		}
	}
	if x := must(s.GetLink(ctx, db, "b1")); x.BookingVersion != 1001 || x.EventChangeKey != "ck2" || x.Version != 3 {
		t.Errorf("after updates: %+v", x)
	}
	links := must(s.ListLinksByMailbox(ctx, db, "u1"))
	if len(links) != 2 || links[0].BookingID != "b1" || links[1].BookingID != "b2" {
		t.Errorf("ListLinksByMailbox = %+v", links)
	}
	if all := must(s.ListLinks(ctx, db)); len(all) != 2 {
		t.Errorf("ListLinks = %+v, want 2 links", all)
	}
	if err := s.DeleteLink(ctx, db, "b1", 2); !errors.Is(err, store.ErrConflict) {
		t.Errorf("DeleteLink stale err = %v, want ErrConflict", err)
	}
	if err := s.DeleteLink(ctx, db, "b1", 3); err != nil {
		t.Errorf("DeleteLink: %v", err)
	}
	if err := s.DeleteLink(ctx, db, "b1", 3); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteLink again err = %v, want ErrNotFound", err)
	}

	// A create in flight: placeholder event id and its transactionId, one
	// per booking even in the same mailbox; times unknown read back zero.
	for _, b := range []string{"p1", "p2"} {
		p := must(s.InsertLink(ctx, db, store.Link{BookingID: b, Mailbox: "u1", EventID: store.PendingEventID(b), CreateTxID: "tx-" + b}))
		if !p.Pending() || p.CreateTxID != "tx-"+b || !p.AgreedStart.IsZero() {
			t.Errorf("pending link %s = %+v", b, p)
		}
	}
	if p := must(s.ListPendingLinks(ctx, db, "u1")); len(p) != 2 {
		t.Errorf("ListPendingLinks = %+v, want p1 and p2", p)
	}
	done := must(s.GetLink(ctx, db, "p1"))
	done.EventID, done.CreateTxID, done.Origin, done.Detached = "ev9", "", "outlook", true
	if x := must(s.UpdateLink(ctx, db, done, done.Version)); x.Pending() || x.EventID != "ev9" || x.Origin != "outlook" || !x.Detached {
		t.Errorf("completed link = %+v", x)
	}
}

// testLinkConcurrentCAS has many writers race from the same version: exactly
// one may win, in transactions as the sync engine will use them.
func testLinkConcurrentCAS(t *testing.T, s *store.Store) {
	ctx := context.Background()
	must(s.InsertLink(ctx, s.DB(), store.Link{BookingID: "b1", Mailbox: "u1", EventID: "ev1"}))
	const writers = 16
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.InTx(ctx, func(tx *sql.Tx) error {
				_, err := s.UpdateLink(ctx, tx, store.Link{BookingID: "b1", Mailbox: "u1", EventID: "ev1", EventHash: fmt.Sprint(i)}, 1)
				return err
			})
		}()
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, store.ErrConflict):
		default:
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d writers won the CAS from version 1, want exactly 1", wins)
	}
	if l := must(s.GetLink(ctx, s.DB(), "b1")); l.Version != 2 {
		t.Errorf("Version = %d, want 2", l.Version)
	}
}

func testSyncState(t *testing.T, s *store.Store) {
	ctx := context.Background()
	db := s.DB()
	key := store.SyncKeyDeltaToken("u1")
	if _, _, err := s.GetSyncState(ctx, db, key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing key err = %v, want ErrNotFound", err)
	}
	for _, v := range []string{"https://graph/delta?token=1", "https://graph/delta?token=2"} {
		if err := s.SetSyncState(ctx, db, key, v); err != nil {
			t.Fatal(err)
		}
		if got, _, err := s.GetSyncState(ctx, db, key); err != nil || got != v {
			t.Errorf("GetSyncState = %q, %v; want %q", got, err, v)
		}
	}
	if err := s.SetSyncState(ctx, db, store.SyncKeyDataverseToken, "dv-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSyncState(ctx, db, key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetSyncState(ctx, db, key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete err = %v, want ErrNotFound", err)
	}
	if got, _, err := s.GetSyncState(ctx, db, store.SyncKeyDataverseToken); err != nil || got != "dv-1" {
		t.Errorf("other key = %q, %v", got, err)
	}
}

func testAudit(t *testing.T, s *store.Store) {
	ctx := context.Background()
	db := s.DB()
	entries := []store.AuditEntry{
		{At: t0, ResourceID: "r1", BookingID: "b1", EventID: "e1", Side: store.SideOutlook, Action: "create_event", Reason: "new booking",
			After: json.RawMessage(`{"subject":"Visit"}`), Outcome: "ok"},
		{At: t0.Add(time.Minute), ResourceID: "r1", BookingID: "b1", EventID: "e1", Side: store.SideOutlook, Action: "update_event",
			Before: json.RawMessage(`{"subject":"Visit"}`), After: json.RawMessage(`{"subject":"Visit 2"}`), Outcome: "failed", Error: "412 precondition failed"},
		{At: t0.Add(2 * time.Minute), ResourceID: "r2", BookingID: "b2", Side: store.SideDataverse, Action: "skip", Reason: "not opted in", Outcome: "skipped"},
		{At: t0.Add(3 * time.Minute), ResourceID: "r1", BookingID: "b3", Side: store.SideDataverse, Action: "update_booking", Outcome: "ok"},
	}
	for i := range entries {
		entries[i].ID = must(s.InsertAudit(ctx, db, entries[i]))
	}
	tests := []struct {
		name   string
		filter store.AuditFilter
		want   []int // indexes into entries, newest first
	}{
		{"all", store.AuditFilter{}, []int{3, 2, 1, 0}},
		{"resource", store.AuditFilter{ResourceID: "r1"}, []int{3, 1, 0}},
		{"booking", store.AuditFilter{BookingID: "b1"}, []int{1, 0}},
		{"since inclusive", store.AuditFilter{Since: t0.Add(time.Minute)}, []int{3, 2, 1}},
		{"resource since", store.AuditFilter{ResourceID: "r1", Since: t0.Add(30 * time.Second)}, []int{3, 1}},
		{"limit", store.AuditFilter{Limit: 2}, []int{3, 2}},
		{"no match", store.AuditFilter{BookingID: "zzz"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []store.AuditEntry
			for _, i := range tt.want {
				want = append(want, entries[i])
			}
			if diff := cmp.Diff(want, must(s.QueryAudit(ctx, db, tt.filter))); diff != "" {
				t.Errorf("QueryAudit(%+v) (-want +got):\n%s", tt.filter, diff)
			}
		})
	}
	if _, err := s.InsertAudit(ctx, db, store.AuditEntry{Action: "x", Outcome: "ok", After: json.RawMessage(`{bad`)}); err == nil {
		t.Error("InsertAudit accepted invalid JSON")
	}
}

// enqueueRecorder is an IntakeConfig.BeforeCommit that records every call
// (the new ids of one commit); hold makes the first call block until
// released, to queue submitters behind it.
type enqueueRecorder struct {
	mu    sync.Mutex
	calls [][]int64
	hold  chan struct{} // nil: don't block
	held  chan struct{} // closed when the first call is blocked
	fail  error
	once  sync.Once
}

func newHoldingRecorder() *enqueueRecorder {
	return &enqueueRecorder{hold: make(chan struct{}), held: make(chan struct{})}
}

func (r *enqueueRecorder) enqueue(ctx context.Context, tx *sql.Tx, ids []int64) error {
	if r.hold != nil {
		first := false
		r.once.Do(func() { first = true })
		if first {
			close(r.held)
			<-r.hold
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.calls = append(r.calls, append([]int64(nil), ids...))
	return nil
}

func (r *enqueueRecorder) snapshot() [][]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]int64(nil), r.calls...)
}

func startIntake(t *testing.T, s *store.Store, cfg store.IntakeConfig) *store.Intake {
	t.Helper()
	in, err := store.NewIntake(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	return in
}

// waitPending waits until n submissions are queued behind a held commit.
// It polls a counter, not a clock: the test fails by timeout, not by speed.
func waitPending(in *store.Intake, n int) {
	for in.Pending() < n {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func testIntakeConcurrent(t *testing.T, s *store.Store) {
	ctx := context.Background()
	rec := &enqueueRecorder{}
	in := startIntake(t, s, store.IntakeConfig{BeforeCommit: rec.enqueue, MaxBatch: 50})

	const submitters, perSubmitter, perBatch = 32, 20, 5
	// Submitters overlap: item ids repeat across goroutines, so the same
	// change arrives concurrently from several "HTTP requests".
	type outcome struct {
		batch []store.Notification
		res   store.Result
		err   error
	}
	results := make([][]outcome, submitters)
	var wg sync.WaitGroup
	for g := range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSubmitter {
				batch := make([]store.Notification, perBatch)
				for j := range batch {
					batch[j] = graphNote("s1", fmt.Sprintf("e%d", (g*perSubmitter*perBatch+i*perBatch+j)%1500), "updated", "W/1")
				}
				res, err := in.Submit(ctx, batch)
				results[g] = append(results[g], outcome{batch, res, err})
			}
		}()
	}
	wg.Wait()

	returned := map[int64]string{}
	inserted := 0
	for _, rs := range results {
		for _, o := range rs {
			if o.err != nil {
				t.Fatalf("Submit: %v", o.err)
			}
			if len(o.res.IDs) != len(o.batch) || o.res.Inserted+o.res.Duplicates != len(o.batch) {
				t.Fatalf("Result %+v does not match batch of %d", o.res, len(o.batch))
			}
			inserted += o.res.Inserted
			for j, id := range o.res.IDs {
				if id == 0 {
					continue
				}
				if _, dup := returned[id]; dup {
					t.Fatalf("id %d returned to two submitters", id)
				}
				returned[id] = o.batch[j].ItemID
			}
		}
	}
	if inserted != 1500 {
		t.Errorf("submitters saw %d inserts, want 1500 distinct changes", inserted)
	}

	enqueued := map[int64]int{}
	for _, call := range rec.snapshot() {
		if len(call) == 0 {
			t.Error("BeforeCommit called with no ids")
		}
		for _, id := range call {
			enqueued[id]++
		}
	}
	stored := must(s.ListUnprocessedNotifications(ctx, s.DB(), 10000))
	if len(stored) != 1500 {
		t.Errorf("stored %d rows, want 1500", len(stored))
	}
	for _, n := range stored {
		if enqueued[n.ID] != 1 {
			t.Errorf("row %d enqueued %d times, want once", n.ID, enqueued[n.ID])
		}
		if returned[n.ID] != n.ItemID {
			t.Errorf("row %d (%s) was reported as %q", n.ID, n.ItemID, returned[n.ID])
		}
	}
	if len(enqueued) != len(stored) {
		t.Errorf("enqueued %d ids, stored %d rows", len(enqueued), len(stored))
	}
}

// testIntakeCoalesces queues submitters behind a held commit and checks they
// all land in the next single transaction.
func testIntakeCoalesces(t *testing.T, s *store.Store) {
	ctx := context.Background()
	must(s.UpsertResource(ctx, s.DB(), store.Resource{ID: "r1", Mailbox: "u1"}))
	must(s.InsertSubscription(ctx, s.DB(), store.Subscription{ID: "s1", ResourceID: "r1", Mailbox: "u1", ExpiresAt: t0, ClientStateHash: store.HashClientState("x")}))

	rec := newHoldingRecorder()
	in := startIntake(t, s, store.IntakeConfig{BeforeCommit: rec.enqueue, MaxBatch: 1000, MaxWait: time.Millisecond})

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := in.Submit(ctx, []store.Notification{graphNote("s1", "first", "updated", "W/1")}); err != nil {
			t.Errorf("first Submit: %v", err)
		}
	}()
	<-rec.held
	const queued = 20
	for i := range queued {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := []store.Notification{graphNote("s1", fmt.Sprintf("q%d", i), "updated", "W/1"), graphNote("s1", fmt.Sprintf("q%d", i), "updated", "W/1")}
			res, err := in.Submit(ctx, batch)
			if err != nil || res.Inserted != 1 || res.Duplicates != 1 {
				t.Errorf("queued Submit %d = %+v, %v", i, res, err)
			}
		}()
	}
	waitPending(in, queued)
	close(rec.hold)
	wg.Wait()
	in.Stop() // waits for the subscription touch, made after the commit

	calls := rec.snapshot()
	var sizes []int
	for _, c := range calls {
		sizes = append(sizes, len(c))
	}
	if diff := cmp.Diff([]int{1, queued}, sizes); diff != "" {
		t.Errorf("ids per commit (-want +got):\n%s", diff)
	}
	if sub := must(s.GetSubscription(ctx, s.DB(), "s1")); sub.LastNotificationAt == nil {
		t.Error("intake did not record last_notification_at on the subscription")
	}
}

func testIntakeEnqueueFailure(t *testing.T, s *store.Store) {
	ctx := context.Background()
	errQueue := errors.New("queue unavailable")
	rec := &enqueueRecorder{fail: errQueue}
	in := startIntake(t, s, store.IntakeConfig{BeforeCommit: rec.enqueue})
	batch := []store.Notification{graphNote("s1", "e1", "updated", "W/1"), graphNote("s1", "e2", "updated", "W/1")}

	if _, err := in.Submit(ctx, batch); !errors.Is(err, errQueue) {
		t.Fatalf("Submit err = %v, want %v", err, errQueue)
	}
	if n := must(s.CountUnprocessedNotifications(ctx, s.DB())); n != 0 {
		t.Fatalf("%d rows survived a failed commit", n)
	}
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	// The sender's retry must be stored, not dropped as a duplicate.
	res, err := in.Submit(ctx, batch)
	if err != nil || res.Inserted != 2 {
		t.Fatalf("retry Submit = %+v, %v; want 2 inserted", res, err)
	}
	// Nothing new → no BeforeCommit.
	if res, err := in.Submit(ctx, batch); err != nil || res.Duplicates != 2 {
		t.Fatalf("duplicate Submit = %+v, %v", res, err)
	}
	if calls := rec.snapshot(); len(calls) != 1 {
		t.Errorf("BeforeCommit called %d times, want 1 (only commits that store rows)", len(calls))
	}
}

func testIntakeDBClosed(t *testing.T, s *store.Store) {
	ctx := context.Background()
	rec := newHoldingRecorder()
	in := startIntake(t, s, store.IntakeConfig{BeforeCommit: rec.enqueue})

	go in.Submit(ctx, []store.Notification{graphNote("s1", "first", "updated", "W/1")})
	<-rec.held
	const queued = 10
	errs := make(chan error, queued)
	for i := range queued {
		go func() {
			_, err := in.Submit(ctx, []store.Notification{graphNote("s1", fmt.Sprintf("q%d", i), "updated", "W/1")})
			errs <- err
		}()
	}
	waitPending(in, queued)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	close(rec.hold)
	for range queued {
		if err := <-errs; err == nil {
			t.Error("Submit queued behind a closed database succeeded")
		}
	}
	if _, err := in.Submit(ctx, []store.Notification{graphNote("s1", "late", "updated", "W/1")}); err == nil {
		t.Error("Submit after close succeeded")
	}
}

func testIntakeStopDrains(t *testing.T, s *store.Store) {
	ctx := context.Background()
	rec := newHoldingRecorder()
	in := startIntake(t, s, store.IntakeConfig{BeforeCommit: rec.enqueue, MaxBatch: 4})

	go in.Submit(ctx, []store.Notification{graphNote("s1", "first", "updated", "W/1")})
	<-rec.held
	const queued = 10
	errs := make(chan error, queued)
	for i := range queued {
		go func() {
			_, err := in.Submit(ctx, []store.Notification{graphNote("s1", fmt.Sprintf("q%d", i), "updated", "W/1")})
			errs <- err
		}()
	}
	waitPending(in, queued)
	stopped := make(chan struct{})
	go func() { in.Stop(); close(stopped) }()
	close(rec.hold)
	<-stopped
	for range queued {
		if err := <-errs; err != nil {
			t.Errorf("Submit queued before Stop: %v", err)
		}
	}
	if n := must(s.CountUnprocessedNotifications(ctx, s.DB())); n != queued+1 {
		t.Errorf("stored %d rows, want %d", n, queued+1)
	}
	if _, err := in.Submit(ctx, []store.Notification{graphNote("s1", "late", "updated", "W/1")}); !errors.Is(err, store.ErrIntakeStopped) {
		t.Errorf("Submit after Stop err = %v, want ErrIntakeStopped", err)
	}
}

func testIntakeAbandoned(t *testing.T, s *store.Store) {
	ctx := context.Background()
	rec := newHoldingRecorder()
	in := startIntake(t, s, store.IntakeConfig{BeforeCommit: rec.enqueue})

	firstDone := make(chan error, 1)
	go func() {
		_, err := in.Submit(ctx, []store.Notification{graphNote("s1", "first", "updated", "W/1")})
		firstDone <- err
	}()
	<-rec.held
	cctx, cancel := context.WithCancel(ctx)
	gaveUp := make(chan error, 1)
	go func() {
		_, err := in.Submit(cctx, []store.Notification{graphNote("s1", "abandoned", "updated", "W/1")})
		gaveUp <- err
	}()
	waitPending(in, 1)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Submit err = %v, want context.Canceled", err)
	}
	close(rec.hold)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	// A later submit goes through the committer after the abandoned one.
	if _, err := in.Submit(ctx, []store.Notification{graphNote("s1", "after", "updated", "W/1")}); err != nil {
		t.Fatal(err)
	}
	var items []string
	for _, n := range must(s.ListUnprocessedNotifications(ctx, s.DB(), 10)) {
		items = append(items, n.ItemID)
	}
	sort.Strings(items)
	if diff := cmp.Diff([]string{"after", "first"}, items); diff != "" {
		t.Errorf("stored items (-want +got):\n%s", diff)
	}
}

func testIntakeValidation(t *testing.T, s *store.Store) {
	ctx := context.Background()
	rec := &enqueueRecorder{}
	in := startIntake(t, s, store.IntakeConfig{BeforeCommit: rec.enqueue})
	tests := []struct {
		name string
		n    store.Notification
	}{
		{"bad source", store.Notification{Source: "smtp", ItemID: "x"}},
		{"NUL in text", store.Notification{Source: store.SourceGraph, ItemID: "a\x00b"}},
		{"invalid UTF-8", store.Notification{Source: store.SourceGraph, ETag: "\xff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := in.Submit(ctx, []store.Notification{graphNote("s1", "ok", "updated", "W/1"), tt.n}); err == nil {
				t.Error("Submit accepted an invalid notification")
			}
		})
	}
	if n := must(s.CountUnprocessedNotifications(ctx, s.DB())); n != 0 {
		t.Errorf("%d rows stored from rejected batches", n)
	}
	if res, err := in.Submit(ctx, nil); err != nil || len(res.IDs) != 0 {
		t.Errorf("empty Submit = %+v, %v", res, err)
	}
}

// testIntakeAppliesMarks: while an Intake runs, MarkNotificationsProcessed
// on the pool goes through its committer, with the same results as a
// direct update; after Stop it runs directly again.
func testIntakeAppliesMarks(t *testing.T, s *store.Store) {
	ctx := context.Background()
	rec := &enqueueRecorder{}
	in := startIntake(t, s, store.IntakeConfig{BeforeCommit: rec.enqueue})
	var ids []int64
	for i := range 5 {
		res, err := in.Submit(ctx, []store.Notification{graphNote("s1", fmt.Sprintf("m%d", i), "updated", "W/1")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.IDs...)
	}
	var wg sync.WaitGroup
	counts := make([]int64, 3)
	for i, part := range [][]int64{ids[:2], ids[2:3], {999999}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i] = must(s.MarkNotificationsProcessed(ctx, s.DB(), part, t0))
		}()
	}
	wg.Wait()
	if diff := cmp.Diff([]int64{2, 1, 0}, counts); diff != "" {
		t.Errorf("marked per call (-want +got):\n%s", diff)
	}
	if n := must(s.MarkNotificationsProcessed(ctx, s.DB(), ids[:3], t0.Add(time.Minute))); n != 0 {
		t.Errorf("re-marking processed rows changed %d", n)
	}
	if n := must(s.CountUnprocessedNotifications(ctx, s.ReadDB())); n != 2 {
		t.Errorf("unprocessed = %d, want 2", n)
	}
	if got := must(s.GetNotifications(ctx, s.ReadDB(), ids[:1])); got[0].ProcessedAt == nil || !got[0].ProcessedAt.Equal(t0) {
		t.Errorf("ProcessedAt = %v, want %v", got[0].ProcessedAt, t0)
	}
	in.Stop()
	if n := must(s.MarkNotificationsProcessed(ctx, s.DB(), ids, t0)); n != 2 {
		t.Errorf("after Stop marked %d, want 2", n)
	}
}

func testLeases(t *testing.T, s *store.Store) {
	ctx := context.Background()
	db := s.DB()
	tests := []struct {
		name  string
		owner string
		ttl   time.Duration
		want  bool
	}{
		{"free", "a", time.Hour, true},
		{"held by another", "b", time.Hour, false},
		{"extended by its owner", "a", time.Hour, true},
		{"expired: taken over", "b", time.Hour, true}, // after "a" re-leases with a negative ttl below
	}
	for i, tt := range tests {
		if i == 3 {
			must(s.TryLease(ctx, db, "k", "a", -time.Second)) // a's lease, already expired
		}
		if got := must(s.TryLease(ctx, db, "k", tt.owner, tt.ttl)); got != tt.want {
			t.Errorf("%s: TryLease(%s) = %v, want %v", tt.name, tt.owner, got, tt.want)
		}
	}
	if err := s.ReleaseLease(ctx, db, "k", "a"); err != nil { // not a's any more: no effect
		t.Fatal(err)
	}
	if must(s.TryLease(ctx, db, "k", "c", time.Hour)) {
		t.Error("release by a former owner freed b's lease")
	}
	if err := s.ReleaseLease(ctx, db, "k", "b"); err != nil {
		t.Fatal(err)
	}
	if !must(s.TryLease(ctx, db, "k", "c", time.Hour)) {
		t.Error("lease not free after its owner released it")
	}
}
