package graph

import (
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
)

// instance is one row of a calendar: a single event, a series master, or
// an occurrence/exception of a series.
type instance struct {
	ev     *event // data: the single event, master, or exception
	master *event // set for occurrences and exceptions
	occ    int64  // original start (Unix seconds) of an occurrence/exception
	start  time.Time
	end    time.Time
}

func (in instance) kind() string {
	switch {
	case in.master == nil && in.ev.isSeriesMaster():
		return "seriesMaster"
	case in.master == nil:
		return "singleInstance"
	case in.ev != in.master:
		return "exception"
	default:
		return "occurrence"
	}
}

func (in instance) ref(mb *mailbox) itemRef {
	if in.master != nil {
		return itemRef{mailbox: mb.id, key: in.master.key, occ: in.occ}
	}
	return itemRef{mailbox: mb.id, key: in.ev.key}
}

func singleOrMaster(ev *event) instance {
	return instance{ev: ev, start: ev.start, end: ev.end}
}

// renderOpts say how to render events for one request.
type renderOpts struct {
	prefs     preferences
	expandExt []string // normalised extended-property ids to $expand
	cancelled bool     // include cancelledOccurrences ($select asks for it)
	odataType bool     // delta items carry @odata.type
	utc       bool     // ignore Prefer: outlook.timezone (used for $filter)
}

const graphTime = "2006-01-02T15:04:05.0000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(graphTime) }

func (e *Emulator) renderInstance(mb *mailbox, in instance, ro renderOpts) eventOut {
	ev := in.ev
	ref := in.ref(mb)
	id := ref.id(ro.prefs.immutableIDs)
	changeKey := changeKeyFor(mb.id, ev.seq)
	zoneName, loc := ro.prefs.timeZone, ro.prefs.zone
	if ro.utc {
		zoneName, loc = "", nil
	}
	out := eventOut{
		ETag:                       etagFor(changeKey),
		ID:                         id,
		CreatedDateTime:            formatTime(ev.created),
		LastModifiedDateTime:       formatTime(ev.modified),
		ChangeKey:                  changeKey,
		Categories:                 nonNil(ev.categories),
		OriginalStartTimeZone:      ev.startTZ,
		OriginalEndTimeZone:        ev.endTZ,
		ICalUID:                    ev.iCalUID,
		ReminderMinutesBeforeStart: ev.reminderMinutes,
		IsReminderOn:               ev.isReminderOn,
		Subject:                    ev.subject,
		Importance:                 ev.importance,
		Sensitivity:                ev.sensitivity,
		IsAllDay:                   ev.isAllDay,
		IsCancelled:                ev.isCancelled,
		IsOrganizer:                true,
		ResponseRequested:          ev.responseRequested,
		ShowAs:                     ev.showAs,
		Type:                       in.kind(),
		WebLink:                    "https://outlook.office365.com/owa/?itemid=" + url.QueryEscape(id) + "&exvsurl=1&path=/calendar/item",
		OnlineMeetingProvider:      "unknown",
		AllowNewTimeProposals:      ev.allowNewProposals,
		HideAttendees:              ev.hideAttendees,
		ResponseStatus:             responseStatus{Response: "organizer", Time: "0001-01-01T00:00:00Z"},
		Body:                       renderBody(ev.bodyType, ev.bodyContent, ro.prefs.textBody),
		Start:                      formatDateTimeTimeZone(in.start, zoneName, loc),
		End:                        formatDateTimeTimeZone(in.end, zoneName, loc),
		Location:                   renderLocation(ev.location, false),
		Locations:                  renderLocations(ev),
		Attendees:                  renderAttendees(ev.attendees),
		Organizer:                  recipient{EmailAddress: emailAddress{Name: mb.user.DisplayName, Address: mb.user.Mail}},
	}
	if out.Organizer.EmailAddress.Address == "" {
		out.Organizer.EmailAddress.Address = mb.user.UserPrincipalName
	}
	out.BodyPreview = bodyPreview(ev.bodyType, ev.bodyContent)
	if ro.odataType {
		out.ODataType = "#microsoft.graph.event"
	}
	if ev.transactionID != "" && in.master == nil {
		out.TransactionID = ptr(ev.transactionID)
	}
	if in.master != nil {
		out.SeriesMasterID = ptr(itemRef{mailbox: mb.id, key: in.master.key}.id(ro.prefs.immutableIDs))
		out.OriginalStart = ptr(time.Unix(in.occ, 0).UTC().Format(time.RFC3339))
		out.ICalUID = occurrenceICalUID(in.master.iCalUID, time.Unix(in.occ, 0))
		out.OriginalStartTimeZone, out.OriginalEndTimeZone = in.master.startTZ, in.master.endTZ
	}
	if in.master == nil && ev.recurrence != nil {
		r := *ev.recurrence
		out.Recurrence = &r
		if ro.cancelled {
			list := []string{}
			for occ := range ev.cancelled {
				list = append(list, "OID."+id+"."+time.Unix(occ, 0).UTC().Format("2006-01-02"))
			}
			sort.Strings(list)
			out.CancelledOccurrences = &list
		}
	}
	extSrc := ev
	if in.master != nil {
		extSrc = in.master
	}
	for _, want := range ro.expandExt {
		if p, ok := extSrc.ext[want]; ok {
			out.SingleValueExtendedProperties = append(out.SingleValueExtendedProperties, p)
		}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func renderLocation(l location, inList bool) location {
	out := l
	if out.LocationType == "" {
		out.LocationType = "default"
	}
	if out.DisplayName != "" && !inList {
		out.UniqueID, out.UniqueIDType = out.DisplayName, "private"
	} else if out.UniqueIDType == "" {
		out.UniqueIDType = "unknown"
	}
	if out.Address == nil {
		out.Address = &physicalAddress{}
	}
	if out.Coordinates == nil {
		out.Coordinates = &outlookGeoCoordinates{}
	}
	return out
}

// renderLocations mirrors location into locations: "they always correspond".
func renderLocations(ev *event) []location {
	src := ev.locations
	if src == nil && ev.location.DisplayName != "" {
		src = []location{ev.location}
	}
	out := make([]location, 0, len(src))
	for _, l := range src {
		out = append(out, renderLocation(l, true))
	}
	return out
}

func renderAttendees(in []attendee) []attendee {
	out := make([]attendee, 0, len(in))
	for _, a := range in {
		a.Status = &responseStatus{Response: "none", Time: "0001-01-01T00:00:00Z"}
		out = append(out, a)
	}
	return out
}

const htmlHead = "<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n</head>\r\n<body>\r\n"
const htmlTail = "\r\n</body>\r\n</html>\r\n"

// renderBody converts as Exchange does: bodies come back as HTML wrapped in
// a document unless the client prefers text.
func renderBody(typ, content string, preferText bool) itemBody {
	if preferText {
		if typ == "html" {
			return itemBody{ContentType: "text", Content: htmlToText(content)}
		}
		return itemBody{ContentType: "text", Content: content}
	}
	if content == "" {
		return itemBody{ContentType: "html", Content: ""}
	}
	if typ == "text" {
		esc := strings.ReplaceAll(html.EscapeString(content), "\n", "<br>\r\n")
		return itemBody{ContentType: "html", Content: htmlHead + "<div class=\"PlainText\">" + esc + "</div>" + htmlTail}
	}
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(content)), "<html") {
		return itemBody{ContentType: "html", Content: content}
	}
	return itemBody{ContentType: "html", Content: htmlHead + content + htmlTail}
}

var (
	tagRE   = regexp.MustCompile(`(?s)<head.*?</head>|<[^>]*>`)
	spaceRE = regexp.MustCompile(`\s+`)
)

func htmlToText(s string) string {
	s = strings.NewReplacer("<br>", "\n", "<br/>", "\n", "<br />", "\n").Replace(s)
	return strings.TrimSpace(html.UnescapeString(tagRE.ReplaceAllString(s, "")))
}

func bodyPreview(typ, content string) string {
	text := content
	if typ == "html" {
		text = htmlToText(content)
	}
	text = strings.TrimSpace(spaceRE.ReplaceAllString(text, " "))
	if r := []rune(text); len(r) > 255 {
		text = string(r[:255])
	}
	return text
}

// eventProps are the names $select accepts for events.
var eventProps = func() []string {
	var names []string
	for _, f := range jsonFieldNames(eventOut{}) {
		if !strings.HasPrefix(f, "@") {
			names = append(names, f)
		}
	}
	return names
}()

// encodeEvent renders, applies $select and marshals one event.
func encodeEvent(out eventOut, sel selection) (json.RawMessage, error) {
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return project(raw, sel, "id", "singleValueExtendedProperties")
}
