package dataverse

import (
	"fmt"
	"strings"
	"time"

	"github.com/bookingsync/bookingsync/internal/emulator/tenant"
)

// Time zone definitions served by timezonedefinitions: Dataverse time-zone
// codes with their Windows standard names [inference: codes as commonly
// seen in orgs; bias in minutes as UTC = local + bias].
var timeZones = []struct {
	code int
	name string
	ui   string
	bias int
}{
	{4, "Pacific Standard Time", "(GMT-08:00) Pacific Time (US & Canada)", 480},
	{10, "Mountain Standard Time", "(GMT-07:00) Mountain Time (US & Canada)", 420},
	{20, "Central Standard Time", "(GMT-06:00) Central Time (US & Canada)", 360},
	{35, "Eastern Standard Time", "(GMT-05:00) Eastern Time (US & Canada)", 300},
	{85, "GMT Standard Time", "(GMT+00:00) Dublin, Edinburgh, Lisbon, London", 0},
	{92, "UTC", "(GMT) Coordinated Universal Time", 0},
	{95, "Central Europe Standard Time", "(GMT+01:00) Belgrade, Bratislava, Budapest, Ljubljana, Prague", -60},
	{105, "Romance Standard Time", "(GMT+01:00) Brussels, Copenhagen, Madrid, Paris", -60},
	{110, "W. Europe Standard Time", "(GMT+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", -60},
	{130, "GTB Standard Time", "(GMT+02:00) Athens, Bucharest", -120},
}

func tzCode(windowsName string) (int, int) {
	for _, z := range timeZones {
		if z.name == windowsName {
			return z.code, z.bias
		}
	}
	return 92, 0
}

// Reset drops all rows and seeds again ("demo" or "empty"). Platform rows
// (organization, application user, time zones, SDK messages and filters,
// Field Service booking statuses) exist in both.
func (e *Emulator) Reset(seed string) error {
	if seed != "demo" && seed != "empty" {
		return fmt.Errorf("dataverse: unknown seed %q (want demo or empty)", seed)
	}
	e.hooks.clear()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tables = buildSchema(e.opts.Columns, !e.opts.FreshOrg)
	e.bySet = map[string]*table{}
	for _, t := range e.tables {
		e.bySet[t.Set] = t
	}
	// Change tracking is on for the scheduling tables unless the org is
	// fresh (then the client switches it on through the metadata API).
	for _, n := range []string{"bookableresourcebooking", "bookableresource", "systemuser", "bookingstatus", "msdyn_workorder", "account", "contact"} {
		e.tables[n].ChangeTracking = !e.opts.FreshOrg || (n != "bookableresourcebooking" && n != "bookableresource")
	}
	e.rows = map[string]map[string]*row{}
	e.indexes = nil
	e.changes = nil
	e.seeding = true
	defer func() { e.seeding = false }()
	e.orgID = stableID("organization")
	e.buID = stableID("businessunit")
	e.appUser = stableID("systemuser", "application")

	cfg := e.t.Config()
	sys := &caller{userID: e.appUser, initiating: e.appUser}
	put := func(logical string, id string, vals map[string]any) string {
		t := e.tables[logical]
		var submitted []string
		for k, v := range vals {
			vals[k] = toStored(v)
			submitted = append(submitted, k)
		}
		e.insert(t, id, vals, submitted, sys)
		return id
	}
	put("systemuser", e.appUser, map[string]any{
		"fullname": "# bookingsync", "firstname": "#", "lastname": "bookingsync",
		"internalemailaddress": "bookingsync-app@" + tenant.Domain, "domainname": "bookingsync-app@" + tenant.Domain,
		"applicationid": cfg.ClientID, "azureactivedirectoryobjectid": tenant.ServicePrincipalID,
		"isdisabled": false, "accessmode": 4,
	})
	put("organization", e.orgID, map[string]any{"name": "Contoso Field Service (emulated)", "expirechangetrackingindays": 7, "isresourcebookingexchangesyncenabled": false})
	for _, z := range timeZones {
		put("timezonedefinition", stableID("tz", fmt.Sprint(z.code)), map[string]any{
			"timezonecode": z.code, "standardname": z.name, "userinterfacename": z.ui, "bias": z.bias})
	}
	for _, m := range []string{"Create", "Update", "Delete"} {
		mid := put("sdkmessage", stableID("sdkmessage", m), map[string]any{"name": m})
		// Dataverse has a filter for every table that supports the message;
		// these are the tables whose changes the service may subscribe to.
		for _, ent := range []string{"bookableresourcebooking", "bookableresource", "msdyn_workorder"} {
			put("sdkmessagefilter", stableID("sdkmessagefilter", m, ent), map[string]any{
				"name": m + " of " + ent, "primaryobjecttypecode": ent, "secondaryobjecttypecode": "none",
				"iscustomprocessingstepallowed": true, "sdkmessageid": mid})
		}
	}
	statuses := []struct {
		name   string
		status int
		fs     any
		color  string
	}{
		{"Proposed", 1, nil, "#FFFFFF"},
		{"Committed", 2, nil, "#00A2E8"},
		{"Scheduled", 2, fsScheduled, "#4C9ACF"},
		{"Traveling", 2, fsTraveling, "#F6A600"},
		{"In Progress", 2, fsInProgress, "#38A169"},
		{"On Break", 2, fsOnBreak, "#B794F4"},
		{"Completed", 2, fsCompleted, "#718096"},
		{"Canceled", 3, fsCanceled, "#E53E3E"},
	}
	for _, s := range statuses {
		vals := map[string]any{"name": s.name, "status": s.status, "msdyn_statuscolor": s.color}
		if s.fs != nil {
			vals["msdyn_fieldservicestatus"] = s.fs
		}
		put("bookingstatus", BookingStatusID(s.name), vals)
	}
	if seed == "demo" {
		e.seedDemo(put)
	}
	return nil
}

// BookingStatusID is the id of a seeded booking status by name (Scheduled,
// Traveling, In Progress, On Break, Completed, Canceled, Proposed, Committed).
func BookingStatusID(name string) string { return stableID("bookingstatus", name) }

// SystemUserID is the seeded systemuserid of a directory user (by Entra object id).
func SystemUserID(entraID string) string { return stableID("systemuser", strings.ToLower(entraID)) }

// ResourceID is the seeded bookable resource of a technician (by Entra object id).
func ResourceID(entraID string) string { return stableID("bookableresource", strings.ToLower(entraID)) }

func (e *Emulator) seedDemo(put func(string, string, map[string]any) string) {
	accounts := []struct{ name, street, city, zip, country string }{
		{"Fourth Coffee", "Kaiserstraße 12", "Frankfurt", "60311", "Germany"},
		{"Northwind Traders", "350 Fifth Avenue", "New York", "10118", "United States"},
		{"Litware, Inc.", "1 Market Street", "San Francisco", "94105", "United States"},
		{"Tailspin Toys", "221B Baker Street", "London", "NW1 6XE", "United Kingdom"},
	}
	var accIDs []string
	for i, a := range accounts {
		accIDs = append(accIDs, put("account", stableID("account", a.name), map[string]any{
			"name": a.name, "accountnumber": fmt.Sprintf("ACC-%04d", i+1), "telephone1": fmt.Sprintf("+1 555 01%02d", i),
			"address1_line1": a.street, "address1_city": a.city, "address1_postalcode": a.zip, "address1_country": a.country}))
	}
	incidents := []struct {
		name string
		mins int
	}{{"Annual Maintenance", 120}, {"Boiler Repair", 90}, {"Installation", 180}}
	var incIDs []string
	for _, it := range incidents {
		incIDs = append(incIDs, put("msdyn_incidenttype", stableID("incidenttype", it.name), map[string]any{
			"msdyn_name": it.name, "msdyn_description": it.name + " visit", "msdyn_estimatedduration": it.mins}))
	}
	var woIDs []string
	for i := 0; i < 10; i++ {
		a := accounts[i%len(accounts)]
		woIDs = append(woIDs, put("msdyn_workorder", stableID("workorder", fmt.Sprint(i)), map[string]any{
			"msdyn_name": fmt.Sprintf("WO-%05d", 101+i), "msdyn_serviceaccount": accIDs[i%len(accIDs)],
			"msdyn_address1": a.street, "msdyn_city": a.city, "msdyn_postalcode": a.zip, "msdyn_country": a.country,
			"msdyn_addressname": a.name, "msdyn_primaryincidenttype": incIDs[i%len(incIDs)],
			"msdyn_instructions":     fmt.Sprintf("Ring at reception; ask for the facilities manager. Job %d.", i+1),
			"msdyn_workordersummary": incidents[i%len(incidents)].name + " at " + a.name,
			"msdyn_systemstatus":     690970001}))
	}
	for _, u := range tenant.DemoUsers() {
		code, _ := tzCode(u.TimeZone)
		put("systemuser", SystemUserID(u.ID), map[string]any{
			"fullname": u.DisplayName, "firstname": u.GivenName, "lastname": u.Surname,
			"internalemailaddress": u.Mail, "domainname": u.UserPrincipalName,
			"azureactivedirectoryobjectid": strings.ToLower(u.ID), "isdisabled": false, "accessmode": 0, "timezonecode": code})
	}
	// A week of bookings: this week's Monday to Friday, two per technician
	// a day at 08:00–10:00 and 13:00–15:30 local time (fixed bias, no DST).
	now := e.now()
	monday := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	monday = monday.AddDate(0, 0, -((int(monday.Weekday()) + 6) % 7))
	n := 0
	for ti, u := range tenant.Technicians() {
		code, bias := tzCode(u.TimeZone)
		rid := put("bookableresource", ResourceID(u.ID), map[string]any{
			"name": u.DisplayName, "resourcetype": 3, "userid": SystemUserID(u.ID), "timezone": code,
			e.opts.Columns.OptIn: e.opts.Columns.NotAllowed})
		if e.opts.FreshOrg {
			delete(e.get("bookableresource", rid).vals, e.opts.Columns.OptIn)
		}
		for d := 0; d < 5; d++ {
			day := monday.AddDate(0, 0, d)
			for slot, hm := range [][2]int{{8 * 60, 120}, {13 * 60, 150}} {
				start := day.Add(time.Duration(hm[0]+bias) * time.Minute)
				end := start.Add(time.Duration(hm[1]) * time.Minute)
				wo := woIDs[n%len(woIDs)]
				status := "Scheduled"
				switch {
				case end.Before(now):
					status = "Completed"
				case !start.After(now):
					status = "In Progress"
				}
				if ti == 1 && d == 4 && slot == 1 {
					status = "Canceled"
				}
				name := fmt.Sprintf("WO-%05d", 101+n%len(woIDs))
				hid := put("bookableresourcebookingheader", stableID("header", fmt.Sprint(n)), map[string]any{
					"name": name, "starttime": start, "endtime": end, "duration": hm[1]})
				put("bookableresourcebooking", stableID("booking", fmt.Sprint(n)), map[string]any{
					"name": name, "starttime": start, "endtime": end, "duration": hm[1], "bookingtype": 1,
					"resource": rid, "bookingstatus": BookingStatusID(status), "header": hid, "msdyn_workorder": wo,
					"msdyn_bookingmethod": 690970001})
				n++
			}
		}
	}
}
