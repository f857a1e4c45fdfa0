package graph

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Delta and skip tokens are self-contained: window, the modification
// number the round started at, the page position and an HMAC. No state is
// kept per token; deleted events are remembered as tombstones for the
// token lifetime so later rounds can report them as @removed.
type deltaToken struct {
	Epoch uint64 `json:"e"`
	MB    string `json:"m"`
	From  int64  `json:"f"`
	To    int64  `json:"t"`
	Init  bool   `json:"n,omitempty"` // first round: everything, no removals
	Base  uint64 `json:"b"`           // changes after this modification number
	Snap  uint64 `json:"s"`           // modification number when the round began
	After string `json:"a,omitempty"` // last item key of the previous page
	Round int64  `json:"r"`           // round start (tenant clock, Unix ms), for expiry
}

func (e *Emulator) encodeToken(t deltaToken) string {
	payload, _ := json.Marshal(t)
	p := base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, e.tokenKey)
	mac.Write([]byte(p))
	return p + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

func (e *Emulator) decodeToken(s string) (deltaToken, bool) {
	p, sig, ok := strings.Cut(s, ".")
	if !ok {
		return deltaToken{}, false
	}
	mac := hmac.New(sha256.New, e.tokenKey)
	mac.Write([]byte(p))
	want := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return deltaToken{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return deltaToken{}, false
	}
	var t deltaToken
	if json.Unmarshal(raw, &t) != nil {
		return deltaToken{}, false
	}
	return t, true
}

type deltaItem struct {
	key     string
	in      instance
	removed bool
	ref     itemRef
}

func sortKey(ref itemRef) string { return fmt.Sprintf("%s%016x", ref.key, ref.occ) }

var deltaUnsupported = []string{"select", "expand", "filter", "orderby", "search"}

func (e *Emulator) delta(w http.ResponseWriter, r *http.Request, rc *reqCtx) *apiError {
	q := r.URL.Query()
	for _, p := range deltaUnsupported {
		if _, ok := queryParam(q, p); ok {
			return errorf(400, codeInvalidURLQuery, "The following parameters are not supported with change tracking over the 'CalendarView' resource: '$orderby, $search, $select, $expand, $filter'.")
		}
	}
	gone := errorf(410, codeSyncStateNotFound, "The sync state generation is not found. Please restart the sync without a state token.")
	skipTok, hasSkip := queryParam(q, "skiptoken")
	deltaTok, hasDelta := queryParam(q, "deltatoken")
	now := e.t.Now()
	lifetime := e.options().DeltaTokenLifetime
	pageSize := e.options().PageSize
	if rc.prefs.maxPageSize > 0 {
		pageSize = rc.prefs.maxPageSize
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	var st deltaToken
	switch {
	case hasSkip || hasDelta:
		tok := skipTok
		if hasDelta {
			tok = deltaTok
		}
		var ok bool
		st, ok = e.decodeToken(tok)
		if !ok || st.Epoch != e.epoch || st.MB != rc.mb.user.ID || now.Sub(time.UnixMilli(st.Round)) > lifetime {
			return gone
		}
		if hasDelta {
			st = deltaToken{Epoch: st.Epoch, MB: st.MB, From: st.From, To: st.To, Base: st.Snap, Snap: e.seq, Round: now.UnixMilli()}
		}
	default:
		from, to, aerr := windowParams(q, rc.prefs)
		if aerr != nil {
			return aerr
		}
		st = deltaToken{Epoch: e.epoch, MB: rc.mb.user.ID, From: from.Unix(), To: to.Unix(), Init: true, Snap: e.seq, Round: now.UnixMilli()}
	}

	items := e.deltaItemsLocked(rc.mb, st)
	start, _ := slices.BinarySearchFunc(items, st.After, func(it deltaItem, k string) int { return strings.Compare(it.key, k) })
	if st.After != "" && start < len(items) && items[start].key == st.After {
		start++
	}
	page := items[start:]
	more := len(page) > pageSize
	if more {
		page = page[:pageSize]
	}
	out := make([]json.RawMessage, 0, len(page))
	for _, it := range page {
		var raw []byte
		var err error
		if it.removed {
			raw, err = json.Marshal(map[string]any{
				"@odata.type": "#microsoft.graph.event",
				"id":          it.ref.id(rc.prefs.immutableIDs),
				"@removed":    map[string]string{"reason": "deleted"},
			})
		} else {
			raw, err = encodeEvent(e.renderInstance(rc.mb, it.in, renderOpts{prefs: rc.prefs, odataType: true}), nil)
		}
		if err != nil {
			return errorf(500, "generalException", err.Error())
		}
		out = append(out, raw)
	}
	link := e.t.BaseURL() + r.URL.Path
	next, deltaLink := "", ""
	if more {
		st.After = page[len(page)-1].key
		next = link + "?$skiptoken=" + e.encodeToken(st)
	} else {
		st.After = ""
		deltaLink = link + "?$deltatoken=" + e.encodeToken(st)
	}
	rc.prefs.setApplied(w)
	writeCollection(w, e.BaseURL()+"/$metadata#Collection(event)", out, next, deltaLink)
	return nil
}

// deltaItemsLocked lists the round's items ordered by key. Later rounds
// report changed events in the window in full, and everything else that
// changed — deleted, cancelled, or now outside the window — as @removed,
// as real Graph does.
func (e *Emulator) deltaItemsLocked(mb *mailbox, st deltaToken) []deltaItem {
	from, to := time.Unix(st.From, 0).UTC(), time.Unix(st.To, 0).UTC()
	seen := map[string]bool{}
	var items []deltaItem
	add := func(in instance) {
		ref := in.ref(mb)
		k := sortKey(ref)
		if !seen[k] {
			seen[k] = true
			items = append(items, deltaItem{key: k, in: in, ref: ref})
		}
	}
	removed := func(ref itemRef) {
		k := sortKey(ref)
		if !seen[k] {
			seen[k] = true
			items = append(items, deltaItem{key: k, removed: true, ref: ref})
		}
	}
	if st.Init {
		for _, in := range instancesInLocked(mb, from, to) {
			add(in)
		}
	} else {
		for _, ev := range mb.events {
			if ev.seq <= st.Base {
				continue
			}
			if !ev.isSeriesMaster() {
				if overlaps(ev.start, ev.end, from, to) {
					add(singleOrMaster(ev))
				} else {
					removed(itemRef{mailbox: mb.id, key: ev.key})
				}
				continue
			}
			ins := expand(ev, from, to)
			for _, in := range ins {
				add(in)
			}
			dur := ev.end.Sub(ev.start)
			for occ := range ev.cancelled {
				s := time.Unix(occ, 0)
				if overlaps(s, s.Add(dur), from, to) {
					removed(itemRef{mailbox: mb.id, key: ev.key, occ: occ})
				}
			}
			for occ, ex := range ev.exceptions {
				if !overlaps(ex.start, ex.end, from, to) {
					removed(itemRef{mailbox: mb.id, key: ev.key, occ: occ})
				}
			}
			if len(ins) == 0 {
				removed(itemRef{mailbox: mb.id, key: ev.key})
			}
		}
		for _, tb := range mb.tombstones {
			if tb.seq <= st.Base {
				continue
			}
			if !tb.ev.isSeriesMaster() {
				removed(itemRef{mailbox: mb.id, key: tb.ev.key})
				continue
			}
			ins := expand(tb.ev, from, to)
			for _, in := range ins {
				removed(in.ref(mb))
			}
			if len(ins) == 0 {
				removed(itemRef{mailbox: mb.id, key: tb.ev.key})
			}
		}
	}
	slices.SortFunc(items, func(a, b deltaItem) int { return strings.Compare(a.key, b.key) })
	return items
}
