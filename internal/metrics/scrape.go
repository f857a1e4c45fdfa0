package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scrapeTimeout bounds the queries a scrape runs.
const scrapeTimeout = 5 * time.Second

var (
	jobsDesc = prometheus.NewDesc("bookingsync_jobs",
		"Background (River) jobs by state, read from the job table at scrape time.", []string{"state"}, nil)
	expiryDesc = prometheus.NewDesc("bookingsync_subscription_nearest_expiry_seconds",
		"Seconds until the soonest-expiring Graph subscription lapses (negative: already lapsed), read from the store at scrape time; absent when there is none.", nil, nil)
	scrapeErrDesc = prometheus.NewDesc("bookingsync_scrape_errors",
		"1 when a scrape-time query failed in this scrape, by query.", []string{"query"}, nil)
)

// JobStatesFunc returns job counts by River state.
type JobStatesFunc func(ctx context.Context) (map[string]int64, error)

// NearestExpiryFunc returns the soonest subscription expiry, ok=false if
// there is no subscription.
type NearestExpiryFunc func(ctx context.Context) (t time.Time, ok bool, err error)

// scrapeCollector runs its queries on every scrape.
type scrapeCollector struct {
	jobs   JobStatesFunc
	expiry NearestExpiryFunc
	now    func() time.Time
}

// RegisterScrapeQueries adds the gauges that are read at scrape time:
// bookingsync_jobs{state} and bookingsync_subscription_nearest_expiry_seconds.
// Either function may be nil.
func (m *Metrics) RegisterScrapeQueries(jobs JobStatesFunc, expiry NearestExpiryFunc) error {
	return m.Registry.Register(&scrapeCollector{jobs: jobs, expiry: expiry, now: time.Now})
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsDesc
	ch <- expiryDesc
	ch <- scrapeErrDesc
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	failed := func(q string, err error) {
		v := 0.0
		if err != nil {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, v, q)
	}
	if c.jobs != nil {
		states, err := c.jobs(ctx)
		for _, s := range JobStates {
			if err == nil {
				ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(states[s]), s)
			}
		}
		failed("jobs", err)
	}
	if c.expiry != nil {
		t, ok, err := c.expiry(ctx)
		if err == nil && ok {
			ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, t.Sub(c.now()).Seconds())
		}
		failed("subscription_expiry", err)
	}
}

// JobStates are River's job states, in the order they are exported.
var JobStates = []string{"available", "scheduled", "pending", "running", "retryable", "completed", "cancelled", "discarded"}
