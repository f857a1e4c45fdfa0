package jobs

import (
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Job kinds. They are stored in river_job.kind: never rename one that may
// still be queued.
const (
	KindRenewSubscriptions = "renew_subscriptions"
	KindCatchupMailbox     = "catchup_mailbox"
	KindPollDataverse      = "poll_dataverse"
)

// Queues. Notifications have none: the inbox is their queue (Inbox).
const (
	QueueMaintenance = river.QueueDefault
)

// uniqueWhileQueued makes a job unique among jobs not yet finished: River's
// minimum state set, without completed, so a later run can be enqueued as
// soon as the previous one finished (and without retryable, so a failing
// one doesn't block a fresh attempt).
func uniqueWhileQueued(byArgs bool) river.UniqueOpts {
	return river.UniqueOpts{
		ByArgs: byArgs,
		ByState: []rivertype.JobState{
			rivertype.JobStateAvailable,
			rivertype.JobStatePending,
			rivertype.JobStateRunning,
			rivertype.JobStateScheduled,
		},
	}
}

// RenewSubscriptionsArgs runs the subscription renewal pass (periodic).
type RenewSubscriptionsArgs struct{}

func (RenewSubscriptionsArgs) Kind() string { return KindRenewSubscriptions }
func (RenewSubscriptionsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, UniqueOpts: uniqueWhileQueued(false)}
}

// CatchupMailboxArgs re-reads one mailbox's calendar (delta query), e.g.
// after missed notifications. At most one is queued per mailbox.
type CatchupMailboxArgs struct {
	Mailbox string `json:"mailbox" river:"unique"`
	Reason  string `json:"reason,omitempty"`
}

func (CatchupMailboxArgs) Kind() string { return KindCatchupMailbox }
func (CatchupMailboxArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, UniqueOpts: uniqueWhileQueued(true)}
}

// PollDataverseArgs runs a Dataverse change-tracking poll (periodic).
type PollDataverseArgs struct{}

func (PollDataverseArgs) Kind() string { return KindPollDataverse }
func (PollDataverseArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, UniqueOpts: uniqueWhileQueued(false)}
}

// UniqueWhileQueued is the uniqueness of this package's periodic jobs, for
// periodic jobs defined elsewhere (Config.PeriodicJobs).
func UniqueWhileQueued(byArgs bool) river.UniqueOpts { return uniqueWhileQueued(byArgs) }
