package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/metrics"
	"github.com/bookingsync/bookingsync/internal/store"
)

// DefaultMaxBodyBytes bounds a notification body. Graph batches at most a
// few hundred small items; Dataverse drops record data above 256 KB.
const DefaultMaxBodyBytes = 1 << 20

// SubscriptionLookup finds the subscription a Graph notification names.
type SubscriptionLookup interface {
	LookupSubscription(ctx context.Context, id string) (store.Subscription, bool, error)
}

// Submitter persists notifications durably (store.Intake).
type Submitter interface {
	Submit(ctx context.Context, ns []store.Notification) (store.Result, error)
}

// Config configures the public endpoints.
type Config struct {
	MaxBodyBytes int64
	// DataverseKey returns the webhook key; DataverseKeyHeader is the header
	// it may come in (HttpHeader auth) besides ?code= (WebhookKey auth).
	DataverseKey       func() string
	DataverseKeyHeader string
	// Ready are the /readyz checks.
	Ready map[string]ReadyFunc
	Now   func() time.Time
}

// Server holds the notification endpoints' dependencies.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics.Metrics
	subs    SubscriptionLookup
	intake  Submitter
}

// NewServer returns the public API server.
func NewServer(cfg Config, subs SubscriptionLookup, intake Submitter, log *slog.Logger, m *metrics.Metrics) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.DataverseKeyHeader == "" {
		cfg.DataverseKeyHeader = "x-bookingsync-key"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg, log: log, metrics: m, subs: subs, intake: intake}
}

// PublicHandler serves the notification endpoints and health checks.
func (s *Server) PublicHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /notifications/graph", s.graphNotifications)
	mux.HandleFunc("POST /notifications/graph/lifecycle", s.graphNotifications)
	mux.HandleFunc("POST /notifications/dataverse", s.dataverseNotifications)
	health(mux, s.cfg.Ready)
	return securityHeaders(mux)
}

// readBody reads at most MaxBodyBytes; it answers 413/400 itself and returns ok=false.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, source string) ([]byte, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			s.metrics.NotificationsReceived.WithLabelValues(source, "wrong_content_type").Inc()
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "expected application/json"})
			return nil, false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.metrics.NotificationsReceived.WithLabelValues(source, "too_large").Inc()
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
			return nil, false
		}
		s.metrics.NotificationsReceived.WithLabelValues(source, "read_error").Inc()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "could not read body"})
		return nil, false
	}
	return body, true
}

// graphNotifications receives change and lifecycle notifications. Items that
// name an unknown subscription or carry the wrong clientState are dropped
// and counted (their secrets are never logged); the rest are committed with
// their processing job before we answer 202. A store failure answers 503 so
// Graph delivers again.
func (s *Server) graphNotifications(w http.ResponseWriter, r *http.Request) {
	if s.answerValidation(w, r) {
		return
	}
	start := time.Now()
	body, ok := s.readBody(w, r, "graph")
	if !ok {
		return
	}
	coll, err := graph.ParseNotificationCollection(body)
	if err != nil {
		s.metrics.NotificationsReceived.WithLabelValues("graph", "malformed").Inc()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed notification collection"})
		return
	}
	now := s.cfg.Now()
	items := make([]store.Notification, 0, len(coll.Value))
	for i := range coll.Value {
		n := &coll.Value[i]
		source := store.SourceGraph
		if n.IsLifecycle() {
			source = store.SourceGraphLifecycle
		}
		sub, found, err := s.subs.LookupSubscription(r.Context(), n.SubscriptionID)
		if err != nil {
			s.log.Error("look up subscription", "err", err)
			s.metrics.NotificationsReceived.WithLabelValues(string(source), "store_error").Inc()
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily unavailable"})
			return
		}
		if !found {
			s.metrics.NotificationsReceived.WithLabelValues(string(source), "unknown_subscription").Inc()
			continue
		}
		if !sub.ClientStateMatches(n.ClientState) {
			s.metrics.NotificationsReceived.WithLabelValues(string(source), "bad_client_state").Inc()
			s.log.Warn("notification with wrong clientState dropped", "subscription", sub.ID)
			continue
		}
		items = append(items, graphItem(n, sub, source, now))
	}
	if len(items) > 0 {
		res, err := s.intake.Submit(r.Context(), items)
		if err != nil {
			s.log.Error("persist graph notifications", "items", len(items), "err", err)
			s.metrics.NotificationsReceived.WithLabelValues("graph", "store_error").Add(float64(len(items)))
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily unavailable"})
			return
		}
		s.metrics.NotificationsReceived.WithLabelValues("graph", "accepted").Add(float64(res.Inserted))
		s.metrics.NotificationsReceived.WithLabelValues("graph", "duplicate").Add(float64(res.Duplicates))
	}
	s.metrics.AckSeconds.WithLabelValues("graph").Observe(time.Since(start).Seconds())
	w.WriteHeader(http.StatusAccepted)
}

// graphItem turns one verified item into an inbox row. A change
// notification's row carries every field processing uses (subscription,
// mailbox, event id, change type, etag), so its raw JSON is not stored: it
// was most of the row's bytes, written to the WAL on the intake's critical
// path. A lifecycle item keeps its payload, without its clientState (the
// secret is not stored).
func graphItem(n *graph.ChangeNotification, sub store.Subscription, source store.Source, now time.Time) store.Notification {
	row := store.Notification{
		Source:         source,
		SubscriptionID: sub.ID,
		Mailbox:        sub.Mailbox,
		ChangeType:     n.ChangeType,
		ReceivedAt:     now,
	}
	if source == store.SourceGraphLifecycle {
		n.ClientState = ""
		row.Payload, _ = json.Marshal(n) // marshalling a parsed struct cannot fail
	}
	if n.ResourceData != nil {
		row.ItemID = n.ResourceData.ID
		row.ETag = n.ResourceData.ODataEtag
	}
	// The key leads with the subscription and item rather than a hash, so
	// new keys land near each other in the unique index instead of dirtying
	// a random page per row (measured: the index, not fsync, bounded intake).
	row.DedupeKey = dedupeKey(sub.ID)[:8] + dedupeKey(row.ItemID, n.ChangeType, row.ETag)[:24]
	if source == store.SourceGraphLifecycle {
		// Lifecycle items carry no version: a retry of the same item within
		// ten minutes is one event, a later one is a new event.
		row.ChangeType = n.LifecycleEvent
		row.DedupeKey = dedupeKey("graph_lifecycle", sub.ID, n.LifecycleEvent, strconv.FormatInt(now.Unix()/600, 10))
	}
	return row
}

// dataverseNotifications receives Dataverse webhooks (RemoteExecutionContext).
func (s *Server) dataverseNotifications(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !s.dataverseKeyOK(r) {
		s.metrics.NotificationsReceived.WithLabelValues("dataverse", "bad_key").Inc()
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong webhook key"})
		return
	}
	body, ok := s.readBody(w, r, "dataverse")
	if !ok {
		return
	}
	rec, err := dataverse.ParseRemoteExecutionContext(body)
	if err != nil {
		s.metrics.NotificationsReceived.WithLabelValues("dataverse", "malformed").Inc()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed RemoteExecutionContext"})
		return
	}
	switch rec.PrimaryEntityName {
	case "bookableresource", "bookableresourcebooking", "msdyn_workorder":
	default:
		// A step registered for something we don't sync: acknowledge, store nothing.
		s.metrics.NotificationsReceived.WithLabelValues("dataverse", "ignored").Inc()
		w.WriteHeader(http.StatusOK)
		return
	}
	id, err := dataverse.ParseID(rec.PrimaryEntityID)
	if err != nil {
		s.metrics.NotificationsReceived.WithLabelValues("dataverse", "malformed").Inc()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed RemoteExecutionContext"})
		return
	}
	row := store.Notification{
		Source:     store.SourceDataverse,
		ItemID:     id,
		ChangeType: rec.MessageName + ":" + rec.PrimaryEntityName,
		ETag:       recVersion(rec),
		Payload:    body,
		ReceivedAt: s.cfg.Now(),
	}
	// Dataverse retries a failed delivery with the same body; the
	// correlation and request ids make one operation's webhook one row.
	row.DedupeKey = dedupeKey("dataverse", id, rec.MessageName, rec.CorrelationID, rec.RequestID, rec.OperationID, row.ETag)
	res, err := s.intake.Submit(r.Context(), []store.Notification{row})
	if err != nil {
		s.log.Error("persist dataverse notification", "err", err)
		s.metrics.NotificationsReceived.WithLabelValues("dataverse", "store_error").Inc()
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily unavailable"})
		return
	}
	s.metrics.NotificationsReceived.WithLabelValues("dataverse", "accepted").Add(float64(res.Inserted))
	s.metrics.NotificationsReceived.WithLabelValues("dataverse", "duplicate").Add(float64(res.Duplicates))
	s.metrics.AckSeconds.WithLabelValues("dataverse").Observe(time.Since(start).Seconds())
	w.WriteHeader(http.StatusOK)
}

// recVersion is the row's versionnumber from the post image or target, if sent.
func recVersion(rec *dataverse.RemoteExecutionContext) string {
	for _, e := range rec.PostEntityImages {
		if v, ok := e.Int("versionnumber"); ok {
			return strconv.FormatInt(v, 10)
		}
	}
	if t, _ := rec.Target(); t != nil {
		if v, ok := t.Int("versionnumber"); ok {
			return strconv.FormatInt(v, 10)
		}
	}
	return ""
}

func (s *Server) dataverseKeyOK(r *http.Request) bool {
	if s.cfg.DataverseKey == nil {
		return false
	}
	want := s.cfg.DataverseKey()
	if want == "" {
		return false // never accept unauthenticated webhooks
	}
	got := r.URL.Query().Get("code")
	if got == "" {
		got = r.Header.Get(s.cfg.DataverseKeyHeader)
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func dedupeKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
