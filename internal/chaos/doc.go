// Package chaos holds the chaos run (issue 7): the emulated tenant in
// process, bookingsync serve as a separate OS process that is killed and
// restarted, random operations on both sides under injected faults, then
// quiescence, catch-up and a check of the sync invariants. Everything is in
// the test files; run it with
//
//	go test -race ./internal/chaos/ [-chaos.seed=N] [-chaos.long | -chaos.ops=N -chaos.kills=K]
package chaos
