package service

import (
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/bookingsync/bookingsync/internal/azauth"
	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/graph"
	"github.com/bookingsync/bookingsync/internal/httpx"
	"github.com/bookingsync/bookingsync/internal/metrics"
)

// APIClients are the Graph and Dataverse clients the configuration
// describes, with the credential and transport they share. The service and
// the operations commands (dataverse setup, register-webhook, check) build
// them the same way.
type APIClients struct {
	Graph      *graph.Client
	Dataverse  *dataverse.Client
	Credential azcore.TokenCredential
	HTTP       *http.Client
}

// NewAPIClients builds the clients. hc and cred may be nil (built from the
// configuration); m may be nil (no metrics).
func NewAPIClients(cfg *config.Config, m *metrics.Metrics, hc *http.Client, cred azcore.TokenCredential) (*APIClients, error) {
	if hc == nil {
		var err error
		if hc, err = azauth.HTTPClient(cfg.Azure.CAFile); err != nil {
			return nil, err
		}
	}
	if cred == nil {
		var err error
		if cred, err = credential(cfg); err != nil {
			return nil, err
		}
	}
	doer := func(api, scope string) *httpx.Client {
		c := &httpx.Client{HTTP: hc, Tokens: httpx.NewTokenSource(cred, scope)}
		if m != nil {
			c.OnRetry = func(ri httpx.RetryInfo) { m.APIRetries.WithLabelValues(api, ri.Reason).Inc() }
			c.OnResponse = func(ri httpx.ResponseInfo) {
				m.ObserveAPIResponse(api, ri.Request, ri.StatusCode, ri.Header.Get("Retry-After") != "")
			}
		}
		return c
	}
	gc, err := graph.New(doer("graph", cfg.Graph.Scope),
		graph.Options{BaseURL: cfg.Graph.BaseURL, MailboxConcurrency: cfg.Graph.MaxConcurrencyPerMailbox})
	if err != nil {
		return nil, err
	}
	dc, err := dataverse.New(dataverse.Options{
		OrgURL: cfg.Dataverse.OrgURL, APIBase: cfg.DataverseAPIBase(), Scope: cfg.DataverseScope(),
		Doer: doer("dataverse", cfg.DataverseScope()),
	})
	if err != nil {
		return nil, err
	}
	return &APIClients{Graph: gc, Dataverse: dc, Credential: cred, HTTP: hc}, nil
}
