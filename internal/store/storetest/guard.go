package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/store"
)

// testGuardPasses: a held pass is found by scope and side, grows while held,
// moves held → approved → applied by compare-and-swap (a second approval
// is a conflict), and no longer counts as held once approved.
func testGuardPasses(t *testing.T, s *store.Store) {
	ctx := context.Background()
	db := s.DB()
	if _, err := s.HeldGuardPass(ctx, db, "m1", store.SideOutlook); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("HeldGuardPass on empty table: %v, want ErrNotFound", err)
	}
	p := must(s.InsertGuardPass(ctx, db, store.GuardPass{Scope: "m1", Side: store.SideOutlook, Deletes: 25, Linked: 100,
		Plan: json.RawMessage(`[{"kind":"booking","booking_id":"b1"}]`), CreatedAt: t0}))
	if !strings.HasPrefix(p.ID, "P-") || p.Status != store.GuardHeld || !p.CreatedAt.Equal(t0) || p.ApprovedAt != nil {
		t.Fatalf("inserted pass = %+v", p)
	}
	other := must(s.InsertGuardPass(ctx, db, store.GuardPass{Scope: "m1", Side: store.SideDataverse, Deletes: 30, Linked: 100,
		Plan: json.RawMessage(`[]`), CreatedAt: t0.Add(time.Minute)}))
	if got := must(s.HeldGuardPass(ctx, db, "m1", store.SideOutlook)); got.ID != p.ID {
		t.Errorf("HeldGuardPass(m1, outlook) = %s, want %s", got.ID, p.ID)
	}
	if n := must(s.CountHeldGuardPasses(ctx, db)); n != 2 {
		t.Errorf("held = %d, want 2", n)
	}
	if _, err := s.InsertGuardPass(ctx, db, store.GuardPass{Scope: "m1", Side: store.SideOutlook, Plan: json.RawMessage(`{bad`)}); err == nil {
		t.Error("InsertGuardPass accepted invalid JSON")
	}

	grown := must(s.UpdateHeldGuardPass(ctx, db, p.ID, 27, 101, json.RawMessage(`[{"kind":"booking","booking_id":"b1"},{"kind":"booking","booking_id":"b2"}]`)))
	if grown.Deletes != 27 || grown.Linked != 101 || !strings.Contains(string(grown.Plan), "b2") {
		t.Errorf("grown pass = %+v", grown)
	}

	approved := must(s.SetGuardPassStatus(ctx, db, p.ID, store.GuardHeld, store.GuardApproved, "admin"))
	if approved.Status != store.GuardApproved || approved.ApprovedAt == nil || approved.ApprovedBy != "admin" {
		t.Errorf("approved pass = %+v", approved)
	}
	if _, err := s.SetGuardPassStatus(ctx, db, p.ID, store.GuardHeld, store.GuardApproved, "again"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second approval: %v, want ErrConflict", err)
	}
	if _, err := s.UpdateHeldGuardPass(ctx, db, p.ID, 1, 1, json.RawMessage(`[]`)); !errors.Is(err, store.ErrConflict) {
		t.Errorf("growing an approved pass: %v, want ErrConflict", err)
	}
	if _, err := s.HeldGuardPass(ctx, db, "m1", store.SideOutlook); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("HeldGuardPass after approval: %v, want ErrNotFound", err)
	}
	if _, err := s.SetGuardPassStatus(ctx, db, "P-NOPE", store.GuardHeld, store.GuardApproved, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("approving an unknown pass: %v, want ErrNotFound", err)
	}
	applied := must(s.SetGuardPassStatus(ctx, db, p.ID, store.GuardApproved, store.GuardApplied, ""))
	if applied.Status != store.GuardApplied || applied.ApprovedBy != "admin" {
		t.Errorf("applied pass = %+v", applied)
	}
	must(s.SetGuardPassStatus(ctx, db, other.ID, store.GuardHeld, store.GuardDiscarded, ""))

	if n := must(s.CountHeldGuardPasses(ctx, db)); n != 0 {
		t.Errorf("held after approve and discard = %d, want 0", n)
	}
	all := must(s.ListGuardPasses(ctx, db, store.GuardPassFilter{}))
	if len(all) != 2 || all[0].ID != other.ID || all[1].ID != p.ID {
		t.Errorf("ListGuardPasses = %+v, want newest first", all)
	}
	if got := must(s.ListGuardPasses(ctx, db, store.GuardPassFilter{Status: store.GuardApplied})); len(got) != 1 || got[0].ID != p.ID {
		t.Errorf("ListGuardPasses(applied) = %+v", got)
	}
	if got := must(s.GetGuardPass(ctx, db, p.ID)); string(got.Plan) != string(grown.Plan) {
		t.Errorf("GetGuardPass plan = %s", got.Plan)
	}
}
