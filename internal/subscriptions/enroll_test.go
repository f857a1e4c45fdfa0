package subscriptions

import (
	"encoding/json"
	"testing"

	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/store"
)

func TestDecide(t *testing.T) {
	cfg := EnrollConfig{OptInColumn: "bsync_outlooksync", Allowed: 100000000, NotAllowed: 100000001}
	enabled := &dataverse.SystemUser{ID: "su", AADObjectID: "aad-1", DomainName: "adele@contoso.example"}
	tests := []struct {
		name          string
		row           string
		user          *dataverse.SystemUser
		wantSubscribe bool
		wantOptIn     store.OptIn
		wantReason    bool
	}{
		{"allowed user resource", `{"bookableresourceid":"r","resourcetype":3,"_userid_value":"su","statecode":0,"bsync_outlooksync":100000000}`, enabled, true, store.OptInAllowed, false},
		{"not allowed", `{"bookableresourceid":"r","resourcetype":3,"_userid_value":"su","statecode":0,"bsync_outlooksync":100000001}`, enabled, false, store.OptInNotAllowed, false},
		{"empty column means not allowed", `{"bookableresourceid":"r","resourcetype":3,"_userid_value":"su","statecode":0,"bsync_outlooksync":null}`, enabled, false, store.OptInNotAllowed, false},
		{"unknown value", `{"bookableresourceid":"r","resourcetype":3,"_userid_value":"su","statecode":0,"bsync_outlooksync":7}`, enabled, false, store.OptInNotAllowed, true},
		{"inactive", `{"bookableresourceid":"r","resourcetype":3,"_userid_value":"su","statecode":1,"bsync_outlooksync":100000000}`, enabled, false, store.OptInAllowed, true},
		{"equipment", `{"bookableresourceid":"r","resourcetype":4,"statecode":0,"bsync_outlooksync":100000000}`, nil, false, store.OptInAllowed, true},
		{"no user", `{"bookableresourceid":"r","resourcetype":3,"statecode":0,"bsync_outlooksync":100000000}`, nil, false, store.OptInAllowed, true},
		{"disabled user", `{"bookableresourceid":"r","resourcetype":3,"_userid_value":"su","statecode":0,"bsync_outlooksync":100000000}`,
			&dataverse.SystemUser{ID: "su", AADObjectID: "aad-1", IsDisabled: true}, false, store.OptInAllowed, true},
		{"user without Entra id", `{"bookableresourceid":"r","resourcetype":3,"_userid_value":"su","statecode":0,"bsync_outlooksync":100000000}`,
			&dataverse.SystemUser{ID: "su"}, false, store.OptInAllowed, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r dataverse.BookableResource
			if err := json.Unmarshal([]byte(tc.row), &r); err != nil {
				t.Fatal(err)
			}
			d, err := Decide(cfg, r, tc.user)
			if err != nil {
				t.Fatal(err)
			}
			if d.Subscribe != tc.wantSubscribe || d.OptIn != tc.wantOptIn || (d.Reason != "") != tc.wantReason {
				t.Fatalf("Decide = %+v", d)
			}
			if d.Subscribe && (d.Mailbox != "aad-1" || d.UPN != "adele@contoso.example") {
				t.Fatalf("mailbox %q upn %q", d.Mailbox, d.UPN)
			}
		})
	}
}
