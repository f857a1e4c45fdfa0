// Package metrics declares bookingsync's Prometheus metrics on one registry,
// so tests and several instances in one process (the sandbox) never collide on
// the global default registry.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every metric the service exports.
type Metrics struct {
	Registry *prometheus.Registry

	// NotificationsReceived counts notification items by source
	// (graph, graph_lifecycle, dataverse) and outcome (accepted, duplicate,
	// unknown_subscription, bad_client_state, bad_key, malformed, store_error).
	NotificationsReceived *prometheus.CounterVec
	// ValidationHandshakes counts validation-token requests by outcome.
	ValidationHandshakes *prometheus.CounterVec
	// AckSeconds is the time from request arrival to our 2xx, by source.
	AckSeconds *prometheus.HistogramVec
	// SubscriptionOps counts Graph subscription operations by op and outcome.
	SubscriptionOps *prometheus.CounterVec
	// SubscriptionRenewalFailing is 1 per subscription whose renewal keeps failing.
	SubscriptionRenewalFailing *prometheus.GaugeVec
	// SubscriptionNearestExpiry is the Unix time of the soonest subscription expiry.
	SubscriptionNearestExpiry prometheus.Gauge
	// APIRetries counts retried outbound calls by API (graph, dataverse) and reason.
	APIRetries *prometheus.CounterVec
	// JobsProcessed counts finished jobs by kind and outcome.
	JobsProcessed *prometheus.CounterVec
}

// New registers all metrics on a fresh registry (with Go and process collectors).
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: r,
		NotificationsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bookingsync", Name: "notifications_received_total",
			Help: "Notification items received, by source and outcome.",
		}, []string{"source", "outcome"}),
		ValidationHandshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bookingsync", Name: "validation_handshakes_total",
			Help: "Graph validation-token requests answered, by outcome.",
		}, []string{"outcome"}),
		AckSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "bookingsync", Name: "notification_ack_seconds",
			Help:    "Time from receiving a notification request to acknowledging it durably.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 3},
		}, []string{"source"}),
		SubscriptionOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bookingsync", Name: "subscription_operations_total",
			Help: "Graph subscription operations, by operation and outcome.",
		}, []string{"op", "outcome"}),
		SubscriptionRenewalFailing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "bookingsync", Name: "subscription_renewal_failing",
			Help: "1 for a resource whose subscription renewal has failed repeatedly (alert on this).",
		}, []string{"resource"}),
		SubscriptionNearestExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "bookingsync", Name: "subscription_nearest_expiry_timestamp_seconds",
			Help: "Unix time at which the soonest-expiring Graph subscription lapses.",
		}),
		APIRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bookingsync", Name: "api_retries_total",
			Help: "Outbound API calls retried, by API and reason.",
		}, []string{"api", "reason"}),
		JobsProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bookingsync", Name: "jobs_processed_total",
			Help: "Background jobs finished, by kind and outcome.",
		}, []string{"kind", "outcome"}),
	}
	r.MustRegister(m.NotificationsReceived, m.ValidationHandshakes, m.AckSeconds, m.SubscriptionOps,
		m.SubscriptionRenewalFailing, m.SubscriptionNearestExpiry, m.APIRetries, m.JobsProcessed)
	return m
}
