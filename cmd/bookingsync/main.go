// Command bookingsync keeps Dynamics 365 Field Service bookings and Outlook
// calendars in two-way sync. See README.md.
package main

import (
	"os"

	"github.com/bookingsync/bookingsync/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
