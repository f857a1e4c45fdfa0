package metrics

import "github.com/prometheus/client_golang/prometheus"

// GuardHeldPasses is how many passes the mass-delete guard holds for
// `bookingsync approve` (read from the store after every guarded pass,
// approval and discard). Process-wide like SyncActions; alert while > 0.
var GuardHeldPasses = prometheus.NewGauge(prometheus.GaugeOpts{
	Namespace: "bookingsync", Name: "guard_held_passes",
	Help: "Passes the mass-delete guard holds for approval (bookingsync approve PASS-ID); alert while above 0.",
})
