package sandbox

import (
	"flag"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	emudv "github.com/bookingsync/bookingsync/internal/emulator/dataverse"
	emugraph "github.com/bookingsync/bookingsync/internal/emulator/graph"
)

// pingpongEdits is the number of alternating edits; CI runs the default,
// the full figure is -pingpong.edits=1000.
var pingpongEdits = flag.Int("pingpong.edits", 200, "alternating edits in TestPingPong (the issue's proof: 1000)")

// TestPingPong: alternating edits on both sides of one linked booking
// (booking times or name in Dataverse, event times in Outlook), each waited
// for until the service has propagated it, then quiet. Counted by the
// emulators' write observers: the service writes exactly once per real
// change on the other side (an edit's echo costs nothing), and once the
// edits stop nothing moves any more: no write, no notification, no webhook.
func TestPingPong(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	sb := startWith(t)
	a := technicians(t, sb)[0]
	optIn(t, sb, a)
	p := linkedPairs(t, sb, a, 1)[0]

	// Every write to this booking and this event, whoever made it.
	var graphWrites, dvWrites, outlookOwn atomic.Int64
	sb.Emulator.Graph().Observe(emugraph.Observer{OnWrite: func(w emugraph.Write) {
		if w.EventID != p.evID {
			return
		}
		if w.Source != "api" {
			outlookOwn.Add(1)
			return
		}
		graphWrites.Add(1)
	}})
	sb.Emulator.Dataverse().Observe(emudv.Observer{OnWrite: func(w emudv.Write) {
		if w.Table == "bookableresourcebooking" && strings.EqualFold(w.ID, p.id) {
			dvWrites.Add(1)
		}
	}})
	t.Cleanup(func() {
		sb.Emulator.Graph().Observe(emugraph.Observer{})
		sb.Emulator.Dataverse().Observe(emudv.Observer{})
	})

	// The test's own edits, and the service's writes they call for.
	var testGraph, testDV, wantServiceGraph, wantServiceDV int64
	waitCounts := func(i int, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			g, d := graphWrites.Load(), dvWrites.Load()
			if g == testGraph+wantServiceGraph && d == testDV+wantServiceDV {
				return
			}
			if g > testGraph+wantServiceGraph || d > testDV+wantServiceDV || time.Now().After(deadline) {
				t.Fatalf("edit %d (%s): service wrote Graph %d, Dataverse %d times; want %d and %d",
					i, what, g-testGraph, d-testDV, wantServiceGraph, wantServiceDV)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}

	start, end := p.origStart, p.end
	began := time.Now()
	for i := range *pingpongEdits {
		var what string
		if i%4 != 3 {
			start, end = start.Add(5*time.Minute), end.Add(5*time.Minute)
		}
		switch i % 4 {
		case 0, 2: // Outlook: the technician moves the event
			what = "event moved in Outlook"
			moveEvent(t, sb, a.mailbox, p.evID, start, end)
			testGraph++
			wantServiceDV++ // the booking's times
		case 1: // D365: the dispatcher moves the booking
			what = "booking moved in D365"
			updateRow(t, sb, dataverse.SetBookings, p.id, map[string]any{"starttime": start.UTC().Format(time.RFC3339),
				"endtime": end.UTC().Format(time.RFC3339), "duration": int(end.Sub(start).Minutes())})
			testDV++
			wantServiceGraph++ // the event's times
		case 3: // D365: the dispatcher renames the booking
			what = "booking renamed in D365"
			updateRow(t, sb, dataverse.SetBookings, p.id, map[string]any{"name": fmt.Sprintf("Ping %d", i)})
			testDV++
			wantServiceGraph++ // the event's subject
		}
		waitCounts(i, what)
	}
	edits := time.Since(began)

	// Quiet: nothing more is written, notified or delivered.
	stats := func() string {
		_, g := sb.Emulator.Graph().Stats()
		_, d := sb.Emulator.Dataverse().Stats()
		return fmt.Sprintf("graph writes %d, dataverse writes %d, outlook's own %d, notifications %d, webhooks %d",
			graphWrites.Load(), dvWrites.Load(), outlookOwn.Load(), g["notifications_sent"], d["webhooks_sent"])
	}
	time.Sleep(time.Second) // the last write's echoes
	before := stats()
	time.Sleep(3 * time.Second)
	if after := stats(); after != before {
		t.Errorf("still moving after the edits stopped:\n before %s\n after  %s", before, after)
	}
	if g, d := graphWrites.Load()-testGraph, dvWrites.Load()-testDV; g != wantServiceGraph || d != wantServiceDV {
		t.Errorf("service writes: Graph %d, Dataverse %d; want %d and %d (one per real change)", g, d, wantServiceGraph, wantServiceDV)
	}
	b, e, ok := p.starts(t, sb, a)
	if !ok || !b.Equal(start) || !e.Equal(start) {
		t.Errorf("after quiet: booking starts %v, event %v; want both %v", b, e, start)
	}
	t.Logf("%d edits (%d Outlook, %d D365) in %v (%v each); service writes: Graph %d, Dataverse %d",
		*pingpongEdits, testGraph, testDV, edits.Round(time.Millisecond), (edits / time.Duration(max(*pingpongEdits, 1))).Round(time.Millisecond),
		wantServiceGraph, wantServiceDV)
}
