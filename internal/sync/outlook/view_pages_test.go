package outlook

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	emugraph "github.com/bookingsync/bookingsync/internal/emulator/graph"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/sync"
)

// A resync lists the whole sync window: at Outlook's default of 10 a page
// (the emulator's too), 1,000 bookings were 100 requests. View asks for
// graph.CalendarViewPageSize a page and still follows nextLinks.
func TestViewPageSize(t *testing.T) {
	h := newHarness(t, emugraph.Options{}, Options{})
	ctx := context.Background()
	from := at("2027-06-01T00:00:00Z")
	n := graph.CalendarViewPageSize + 5
	for i := range n {
		booking := fmt.Sprintf("bk-%03d", i)
		start := from.Add(time.Duration(i) * time.Hour)
		if _, err := h.cal.Create(ctx, adele, booking, TransactionID(booking, adele, 1),
			sync.Content{Subject: booking, Start: start, End: start.Add(30 * time.Minute), ShowAs: "busy"}); err != nil {
			t.Fatal(err)
		}
	}
	h.requests()
	view, err := h.cal.View(ctx, adele, from, from.Add(time.Duration(n)*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(view) != n {
		t.Fatalf("view has %d events, want %d", len(view), n)
	}
	reqs := h.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests for %d events, want 2 pages", len(reqs), n)
	}
	for _, r := range reqs {
		if !strings.Contains(r.Query, fmt.Sprintf("$top=%d", graph.CalendarViewPageSize)) {
			t.Errorf("page request %s?%s does not ask for pages of %d", r.Path, r.Query, graph.CalendarViewPageSize)
		}
	}
}
