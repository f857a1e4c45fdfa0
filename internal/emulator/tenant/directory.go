package tenant

// User is a member of the emulated directory. The Graph emulator serves these
// as users with mailboxes; the Dataverse emulator's demo seed makes each a
// systemuser (azureactivedirectoryobjectid = ID) and a bookable resource.
type User struct {
	ID                string // Entra object id
	DisplayName       string
	GivenName         string
	Surname           string
	UserPrincipalName string
	Mail              string
	JobTitle          string
	// TimeZone is the mailbox's Windows time-zone name.
	TimeZone string
}

// Domain is the emulated tenant's verified domain.
const Domain = "contoso-fs.example"

// DemoUsers is the `--seed demo` directory: a dispatcher and field technicians
// spread over a few time zones. The ids are fixed so docs, tests and scripts
// can name them.
func DemoUsers() []User {
	return []User{
		{ID: "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b01", DisplayName: "Adele Vance", GivenName: "Adele", Surname: "Vance", UserPrincipalName: "adele.vance@" + Domain, Mail: "adele.vance@" + Domain, JobTitle: "Field Technician", TimeZone: "W. Europe Standard Time"},
		{ID: "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b02", DisplayName: "Lee Gu", GivenName: "Lee", Surname: "Gu", UserPrincipalName: "lee.gu@" + Domain, Mail: "lee.gu@" + Domain, JobTitle: "Field Technician", TimeZone: "Eastern Standard Time"},
		{ID: "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b03", DisplayName: "Megan Bowen", GivenName: "Megan", Surname: "Bowen", UserPrincipalName: "megan.bowen@" + Domain, Mail: "megan.bowen@" + Domain, JobTitle: "Field Technician", TimeZone: "Pacific Standard Time"},
		{ID: "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b04", DisplayName: "Nestor Wilke", GivenName: "Nestor", Surname: "Wilke", UserPrincipalName: "nestor.wilke@" + Domain, Mail: "nestor.wilke@" + Domain, JobTitle: "Senior Technician", TimeZone: "GMT Standard Time"},
		{ID: "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b05", DisplayName: "Isaiah Langer", GivenName: "Isaiah", Surname: "Langer", UserPrincipalName: "isaiah.langer@" + Domain, Mail: "isaiah.langer@" + Domain, JobTitle: "Field Technician", TimeZone: "UTC"},
		{ID: "4f0f4b35-64a3-4b7e-9a7c-1d2e3f4a5b06", DisplayName: "Diego Siciliani", GivenName: "Diego", Surname: "Siciliani", UserPrincipalName: "diego.siciliani@" + Domain, Mail: "diego.siciliani@" + Domain, JobTitle: "Dispatcher", TimeZone: "W. Europe Standard Time"},
	}
}

// Technicians are the demo users who get bookable resources.
func Technicians() []User {
	var out []User
	for _, u := range DemoUsers() {
		if u.JobTitle != "Dispatcher" {
			out = append(out, u)
		}
	}
	return out
}
