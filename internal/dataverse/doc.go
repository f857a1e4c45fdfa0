// Package dataverse is a thin typed client for the Dataverse Web API (v9.2)
// as used by bookingsync: Bookable Resource Bookings, Bookable Resources,
// system users, booking statuses and Field Service work orders, plus change
// tracking, table/column metadata, webhook registration and the
// RemoteExecutionContext body that Dataverse webhooks POST to us.
//
// Facts and their sources are in shared/reference/dataverse-api.md; doc
// comments say where a behaviour is marked [unverified] or [inference] there.
//
// Conventions:
//   - Ids in URL paths must be canonical GUIDs ([ParseID]); anything else is
//     rejected before a request is made.
//   - $filter expressions are built with [Filter] helpers that escape every
//     literal; raw strings are never concatenated into a filter.
//   - Errors from Dataverse become *[Error]; callers branch on the sentinels
//     ([ErrNotFound], [ErrPreconditionFailed], [ErrAlreadyExists],
//     [ErrChangeTrackingExpired], [ErrPrivilegeDenied], [ErrThrottled]) with
//     errors.Is.
//   - Writes whose result the caller records (versions for echo detection)
//     use Prefer: return=representation ([Client.CreateReturn],
//     [Client.UpdateReturn], [Client.CreateWithIDReturn]): one request, and
//     the version returned is the one the write produced.
package dataverse
