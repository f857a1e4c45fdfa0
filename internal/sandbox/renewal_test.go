package sandbox

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/bookingsync/bookingsync/internal/emulator"
	emugraph "github.com/bookingsync/bookingsync/internal/emulator/graph"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/jobs"
)

// Renewal end to end, with lifetimes shrunk to seconds: the service asks for
// renewalLifetime (below Graph's 45-minute floor, which only the emulator's
// min_subscription_seconds lets through), renews once less than half of it
// (minus up to a tenth of jitter) is left, and its renewal job runs every
// renewalPoll. Due at 4–4.8 s before expiry and picked up within about a
// second, a renewal leaves a margin of seconds, even under -race.
const (
	renewalLifetime = 8 * time.Second
	renewalPoll     = 500 * time.Millisecond
	// renewalWatch is how long the first case watches the subscription:
	// about seven renewals.
	renewalWatch = 24 * time.Second
)

// startRenewalSandbox starts a sandbox whose subscriptions live
// renewalLifetime. The emulator expires them to the 100 ms and sends
// reauthorizationRequired only in the last second, so a renewal that came
// that late shows up as a lifecycle notification.
func startRenewalSandbox(t *testing.T) *Sandbox {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := Start(ctx, Options{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(),
		Emulator: emulator.Options{Addr: "127.0.0.1:0", Seed: "demo", Graph: emugraph.Options{
			MinSubscriptionSeconds:  1,
			SweepInterval:           100 * time.Millisecond,
			ReauthorizationLead:     time.Second,
			ReauthorizationInterval: time.Second,
		}},
		SubscriptionLifetime: renewalLifetime,
		RenewInterval:        renewalPoll,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Stop(); cancel() })
	return sb
}

// optInAndWait opts the first technician in and returns the subscription
// Graph then has for them.
func optInAndWait(t *testing.T, sb *Sandbox) (resourceID, mailbox string, sub graph.Subscription) {
	t.Helper()
	resourceID, mailbox = technician(t, sb)
	setOptIn(t, sb, resourceID, sb.Config.Dataverse.OptInAllowed)
	waitFor(t, "a subscription for the opted-in mailbox", func() (bool, error) {
		return len(graphSubscriptionsFor(t, sb, mailbox)) == 1, nil
	})
	sub = graphSubscriptionsFor(t, sb, mailbox)[0]
	if left := time.Until(sub.ExpirationDateTime); left <= 0 || left > renewalLifetime+time.Second {
		t.Fatalf("subscription expires in %v, want about %v (did the emulator raise it to its floor?)", left, renewalLifetime)
	}
	return resourceID, mailbox, sub
}

// emulatorCounters are the emulator's Graph counters (subscriptions_expired,
// lifecycle_notifications_sent, …) and its route counts.
func emulatorCounters(sb *Sandbox) (routes, extra map[string]int64) {
	return sb.Emulator.Graph().Stats()
}

func TestRenewalEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("watches subscriptions being renewed for about 25 s of wall time")
	}

	// The periodic renewal job alone keeps one subscription alive for
	// renewalWatch, three times its lifetime: the emulator never expires it,
	// never has to send a lifecycle notification (no reauthorizationRequired,
	// no subscriptionRemoved), the id stays, there is only ever one, and its
	// expiry moves forward with every renewal.
	t.Run("renewed by the periodic job, never lapses", func(t *testing.T) {
		t.Parallel()
		sb := startRenewalSandbox(t)
		ctx := context.Background()
		_, mailbox, first := optInAndWait(t, sb)

		exp := first.ExpirationDateTime
		renewals := 0
		minLeft := renewalLifetime
		end := time.Now().Add(renewalWatch)
		for time.Now().Before(end) {
			time.Sleep(100 * time.Millisecond)
			subs := graphSubscriptionsFor(t, sb, mailbox)
			now := time.Now()
			if len(subs) != 1 {
				t.Fatalf("after %d renewals: %d subscriptions in Graph, want 1", renewals, len(subs))
			}
			s := subs[0]
			if s.ID != first.ID {
				t.Fatalf("after %d renewals: subscription %s replaced by %s (it lapsed or was recreated)", renewals, first.ID, s.ID)
			}
			if !s.ExpirationDateTime.After(now) {
				t.Fatalf("after %d renewals: subscription expired at %v", renewals, s.ExpirationDateTime)
			}
			switch {
			case s.ExpirationDateTime.Before(exp):
				t.Fatalf("expiry moved back: %v → %v", exp, s.ExpirationDateTime)
			case s.ExpirationDateTime.After(exp):
				renewals++
				exp = s.ExpirationDateTime
			}
			minLeft = min(minLeft, s.ExpirationDateTime.Sub(now))
		}
		t.Logf("%d renewals in %v; least time left before expiry seen: %v", renewals, renewalWatch, minLeft)
		// renewalWatch / (lifetime/2) would be 6; jitter makes it more.
		if renewals < 4 {
			t.Fatalf("%d renewals in %v, want at least 4", renewals, renewalWatch)
		}

		routes, extra := emulatorCounters(sb)
		if n := extra["subscriptions_expired"]; n != 0 {
			t.Errorf("emulator expired %d subscriptions", n)
		}
		if n := extra["lifecycle_notifications_sent"]; n != 0 {
			t.Errorf("emulator sent %d lifecycle notifications; renewal should never get that close to expiry", n)
		}
		if n := routes["PATCH /subscriptions/{id}"]; n < int64(renewals) {
			t.Errorf("emulator saw %d renewal PATCHes for %d observed renewals", n, renewals)
		}
		if n := routes["POST /subscriptions"]; n != 1 {
			t.Errorf("emulator saw %d subscription creates, want 1", n)
		}

		// Our store agrees with Graph: one subscription, same id, renewed.
		stored, err := sb.Service.Store.ListSubscriptions(ctx, sb.Service.Store.DB())
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != 1 || stored[0].ID != first.ID || !stored[0].ExpiresAt.After(first.ExpirationDateTime) {
			t.Fatalf("store: %+v", stored)
		}
	})

	// A subscription that disappears from Graph without a word (deleted by
	// someone else with the app's permissions, or lost on Graph's side)
	// answers 404 to the next renewal: the service creates a new one and
	// schedules a catch-up for the mailbox, which may have missed changes.
	t.Run("gone from Graph: recreated with a catch-up", func(t *testing.T) {
		t.Parallel()
		sb := startRenewalSandbox(t)
		ctx := context.Background()
		_, mailbox, first := optInAndWait(t, sb)

		// Behind the manager's back: straight to Graph, our store untouched.
		if err := sb.Service.Graph.DeleteSubscription(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		var second graph.Subscription
		waitFor(t, "a new subscription after the 404 on renewal", func() (bool, error) {
			subs := graphSubscriptionsFor(t, sb, mailbox)
			if len(subs) > 1 {
				t.Fatalf("%d subscriptions in Graph, want 1", len(subs))
			}
			if len(subs) == 1 && subs[0].ID != first.ID {
				second = subs[0]
				return true, nil
			}
			return false, nil
		})
		if routes, _ := emulatorCounters(sb); routes["PATCH /subscriptions/{id}"] < 1 {
			t.Errorf("recreated without a renewal attempt (%d PATCHes)", routes["PATCH /subscriptions/{id}"])
		}
		waitFor(t, "the store to hold only the new subscription", func() (bool, error) {
			stored, err := sb.Service.Store.ListSubscriptions(ctx, sb.Service.Store.DB())
			return len(stored) == 1 && stored[0].ID == second.ID, err
		})

		// The catch-up is a durable job for this mailbox, and it ran.
		waitFor(t, "a completed catch-up job for the mailbox", func() (bool, error) {
			res, err := sb.Service.Queue.Client().JobList(ctx, river.NewJobListParams().Kinds(jobs.KindCatchupMailbox).First(100))
			if err != nil {
				return false, err
			}
			for _, j := range res.Jobs {
				var args jobs.CatchupMailboxArgs
				if err := json.Unmarshal(j.EncodedArgs, &args); err != nil {
					return false, err
				}
				if args.Mailbox != mailbox {
					continue
				}
				if !strings.Contains(args.Reason, "404") {
					t.Fatalf("catch-up reason %q, want the 404 on renewal", args.Reason)
				}
				if j.State == rivertype.JobStateDiscarded || j.State == rivertype.JobStateCancelled {
					t.Fatalf("catch-up job %d %s: %v", j.ID, j.State, j.Errors)
				}
				return j.State == rivertype.JobStateCompleted, nil
			}
			return false, nil
		})

		// And the new subscription is renewed in turn.
		waitFor(t, "the new subscription to be renewed", func() (bool, error) {
			subs := graphSubscriptionsFor(t, sb, mailbox)
			if len(subs) != 1 || subs[0].ID != second.ID {
				t.Fatalf("after recreation: %+v", subs)
			}
			return subs[0].ExpirationDateTime.After(second.ExpirationDateTime), nil
		})
		if _, extra := emulatorCounters(sb); extra["subscriptions_expired"] != 0 || extra["lifecycle_notifications_sent"] != 0 {
			t.Errorf("emulator counters: %v", extra)
		}
	})
}
