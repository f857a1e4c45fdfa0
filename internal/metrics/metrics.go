// Package metrics declares bookingsync's Prometheus metrics on one registry,
// so tests and several instances in one process (the sandbox) never collide on
// the global default registry.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Process-wide counters for code that has no *Metrics at hand (the sync
// engine's audit, its mass-delete guard, the catch-up pass). Every registry
// New builds registers these same collectors, so they appear on each
// service's /metrics; several services in one process (tests) share them.
var (
	// SyncActions counts the engine's audited actions by kind (the audit
	// action, e.g. create_event, update_booking, conflict), side
	// (dataverse, outlook, none) and outcome (ok, failed, …).
	SyncActions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "bookingsync", Name: "sync_actions_total",
		Help: "Sync actions performed or decided by the engine, by kind, side and outcome.",
	}, []string{"kind", "side", "outcome"})
	// DriftRepaired counts differences the catch-up (reconciliation) pass
	// found and repaired, i.e. changes no notification had brought, by the
	// side that was written (dataverse, outlook). Increment it with
	// metrics.DriftRepaired.WithLabelValues(side).Inc().
	DriftRepaired = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "bookingsync", Name: "catchup_drift_repaired_total",
		Help: "Differences found and repaired by the catch-up pass, by the side written.",
	}, []string{"side"})
	// MassDeleteGuardTrips counts runs held for approval by the mass-delete
	// guard (sync.mass_delete). Increment it with
	// metrics.MassDeleteGuardTrips.Inc().
	MassDeleteGuardTrips = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "bookingsync", Name: "mass_delete_guard_trips_total",
		Help: "Runs the mass-delete guard held for approval instead of deleting.",
	})
)

func init() {
	// Export zeros for the known label values, so dashboards and alerts
	// see the families before the first increment.
	for _, side := range []string{"dataverse", "outlook"} {
		DriftRepaired.WithLabelValues(side)
	}
}

// CountSyncAction counts one audited engine action (see SyncActions).
func CountSyncAction(kind, side, outcome string) {
	if side == "" {
		side = "none"
	}
	if outcome == "" {
		outcome = "unknown"
	}
	SyncActions.WithLabelValues(kind, side, outcome).Inc()
}

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
	// APIRequests counts outbound HTTP responses (every attempt, retries
	// included) by API, endpoint template and status code ("error" for a
	// transport failure). Fed by ObserveAPIResponse.
	APIRequests *prometheus.CounterVec
	// APIThrottled counts throttled responses (429, or 503 with
	// Retry-After) by API.
	APIThrottled *prometheus.CounterVec
	// RetentionDeleted counts rows removed by the retention job, by table.
	RetentionDeleted *prometheus.CounterVec

	// The process-wide counters above, for code holding a *Metrics.
	SyncActions          *prometheus.CounterVec
	DriftRepaired        *prometheus.CounterVec
	MassDeleteGuardTrips prometheus.Counter
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
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bookingsync", Name: "api_requests_total",
			Help: "Outbound API responses (each attempt), by API, endpoint and HTTP status.",
		}, []string{"api", "endpoint", "status"}),
		APIThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bookingsync", Name: "api_throttled_total",
			Help: "Outbound API responses that were throttling (429, or 503 with Retry-After), by API.",
		}, []string{"api"}),
		RetentionDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bookingsync", Name: "retention_deleted_total",
			Help: "Rows deleted by the retention job, by table.",
		}, []string{"table"}),
		SyncActions:          SyncActions,
		DriftRepaired:        DriftRepaired,
		MassDeleteGuardTrips: MassDeleteGuardTrips,
	}
	for _, api := range []string{"graph", "dataverse"} {
		m.APIThrottled.WithLabelValues(api)
	}
	for _, t := range []string{"notifications", "audit"} {
		m.RetentionDeleted.WithLabelValues(t)
	}
	r.MustRegister(m.NotificationsReceived, m.ValidationHandshakes, m.AckSeconds, m.SubscriptionOps,
		m.SubscriptionRenewalFailing, m.SubscriptionNearestExpiry, m.APIRetries, m.JobsProcessed,
		m.APIRequests, m.APIThrottled, m.RetentionDeleted,
		SyncActions, DriftRepaired, MassDeleteGuardTrips, GuardHeldPasses)
	return m
}
