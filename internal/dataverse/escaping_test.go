package dataverse_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/bookingsync/bookingsync/internal/azauth"
	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/emulator"
)

// TestQuoteCannotWidenFilter proves the escaping against the Dataverse
// emulator's OData parser: a value crafted to widen a $filter matches no
// row (where the same text spliced in unescaped would match every row),
// and a name that really holds a quote still matches exactly its row.
func TestQuoteCannotWidenFilter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	emu, err := emulator.New(emulator.Options{Addr: "127.0.0.1:0", Seed: "demo", CAOut: filepath.Join(t.TempDir(), "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Stop)
	info := emu.Info()
	cred, err := azauth.NewCredential(azauth.Config{TenantID: info["tenant_id"], ClientID: info["client_id"],
		ClientSecret: info["client_secret"], AuthorityHost: info["authority_host"], ExtraCAFile: info["ca_file"]})
	if err != nil {
		t.Fatal(err)
	}
	dv, err := dataverse.New(dataverse.Options{OrgURL: info["dataverse_org_url"], Scope: info["dataverse_scope"],
		Credential: cred, HTTPClient: emu.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	names := func(f dataverse.Filter) []string {
		t.Helper()
		var out []string
		err := dv.List(ctx, dataverse.SetResources, dataverse.Query{Select: []string{"bookableresourceid", "name"}, Filter: f},
			func(raw json.RawMessage) error {
				var r struct {
					Name string `json:"name"`
				}
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				out = append(out, r.Name)
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	all := names(dataverse.Filter{})
	if len(all) < 2 {
		t.Fatalf("the demo seed has %d resources, want several", len(all))
	}
	if got := names(dataverse.Eq("name", dataverse.String(all[0]))); len(got) != 1 || got[0] != all[0] {
		t.Fatalf("a plain name matched %v", got)
	}
	id, err := dv.Create(ctx, dataverse.SetResources, map[string]any{"name": "O'Brien ' or '1'='1", "resourcetype": 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(dataverse.Eq("name", dataverse.String("O'Brien ' or '1'='1"))); len(got) != 1 {
		t.Fatalf("a name holding quotes matched %v, want exactly its row %s", got, id)
	}
	for _, crafted := range []string{
		"x' or '1'='1",
		"x' or name ne 'x",
		"') or (name ne '",
		"x' or true or name eq 'x",
		"x' or contains(name,'') or name eq 'x",
		"x'%20or%20name%20ne%20'x",
		"x' or bookableresourceid ne null or name eq '",
	} {
		t.Run(crafted, func(t *testing.T) {
			if got := names(dataverse.Eq("name", dataverse.String(crafted))); len(got) != 0 {
				t.Fatalf("crafted value matched %d of %d rows: %v", len(got), len(all)+1, got)
			}
			if got := names(dataverse.Contains("name", crafted)); len(got) != 0 {
				t.Fatalf("crafted contains() matched %d rows", len(got))
			}
			if _, err := dataverse.Eq("bookableresourceid", dataverse.GUID(crafted)).Build(); err == nil {
				t.Fatal("a crafted GUID was accepted")
			}
		})
	}
}
