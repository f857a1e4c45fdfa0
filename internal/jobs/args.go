package jobs

import (
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Job kinds. They are stored in river_job.kind: never rename one that may
// still be queued.
const (
	KindProcessNotifications = "process_notifications"
	KindRenewSubscriptions   = "renew_subscriptions"
	KindCatchupMailbox       = "catchup_mailbox"
	KindPollDataverse        = "poll_dataverse"
)

// Queues. Intake work gets its own queue so a slow catch-up or renewal run
// can't hold back processing of fresh notifications.
const (
	QueueNotifications = "notifications"
	QueueMaintenance   = river.QueueDefault
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

// ProcessNotificationsArgs names inbox rows committed together by the intake.
type ProcessNotificationsArgs struct {
	IDs []int64 `json:"ids"`
}

func (ProcessNotificationsArgs) Kind() string { return KindProcessNotifications }
func (ProcessNotificationsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueNotifications}
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
