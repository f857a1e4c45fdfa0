//go:build race

package chaos

// raceEnabled: the service binary is built with -race too, and its data
// race reports count as violations.
const raceEnabled = true
