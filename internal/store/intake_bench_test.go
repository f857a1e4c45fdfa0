package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bookingsync/bookingsync/internal/jobs"
	"github.com/bookingsync/bookingsync/internal/store"
	"github.com/bookingsync/bookingsync/internal/store/storetest"
)

// BenchmarkIntake measures durable notification intake: 32 concurrent
// submitters (like concurrent webhook requests), each Submit carrying
// 1-20 notifications with ~1 KiB payloads, while the inbox processor
// claims and marks the stored rows. One op is one Submit; notif/s is the
// figure to read.
//
//	go test -run '^$' -bench Intake -benchtime 3s ./internal/store/
//
// "group" is the Intake as configured by default; "commit-per-request"
// (MaxBatch 1) is one transaction and fsync per Submit, the baseline.
func BenchmarkIntake(b *testing.B) {
	const submitters = 32
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	payload[0], payload[len(payload)-1] = '"', '"'

	type backend struct {
		name string
		open func(b *testing.B) *store.Store
	}
	backends := []backend{
		{"sqlite-full", func(b *testing.B) *store.Store { return storetest.NewSQLite(b) }},
		{"sqlite-normal", func(b *testing.B) *store.Store {
			return storetest.NewSQLite(b, store.WithSQLiteSynchronous("NORMAL"))
		}},
		{"postgres", func(b *testing.B) *store.Store { return storetest.NewPostgres(b) }},
	}
	modes := []struct {
		name     string
		maxBatch int
	}{
		{"group", 0},
		{"commit-per-request", 1},
	}
	var seq atomic.Int64
	for _, be := range backends {
		for _, mode := range modes {
			for _, perSubmit := range []int{1, 5, 10, 20} {
				b.Run(fmt.Sprintf("%s/%s/per-submit=%d", be.name, mode.name, perSubmit), func(b *testing.B) {
					st := be.open(b)
					proc := jobs.NewInbox(st, jobs.InboxConfig{})
					in, err := store.NewIntake(st, store.IntakeConfig{Stored: proc.Wake, MaxBatch: mode.maxBatch})
					if err != nil {
						b.Fatal(err)
					}
					if err := in.Start(context.Background()); err != nil {
						b.Fatal(err)
					}
					b.Cleanup(in.Stop)
					if err := proc.Start(context.Background()); err != nil {
						b.Fatal(err)
					}
					b.Cleanup(proc.Stop) // before the intake's (cleanups run last first)

					var next atomic.Int64
					var wg sync.WaitGroup
					b.ResetTimer()
					for range submitters {
						wg.Add(1)
						go func() {
							defer wg.Done()
							batch := make([]store.Notification, perSubmit)
							for next.Add(1) <= int64(b.N) {
								for j := range batch {
									batch[j] = store.Notification{
										Source: store.SourceGraph, SubscriptionID: "sub-1", Mailbox: "user-1",
										ItemID: fmt.Sprintf("AAMkAD-%d", seq.Add(1)), ChangeType: "updated", ETag: "W/\"DwAAABYAAAA\"",
										Payload: payload,
									}
								}
								if _, err := in.Submit(context.Background(), batch); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					wg.Wait()
					b.StopTimer()
					b.ReportMetric(float64(b.N*perSubmit)/b.Elapsed().Seconds(), "notif/s")
				})
			}
		}
	}
}
