package store

import (
	"context"
	"fmt"
	"time"
)

// DeleteAuditBefore removes audit entries recorded before t (retention) and
// returns how many it removed. It uses the index on audit.at.
func (s *Store) DeleteAuditBefore(ctx context.Context, q DBTX, t time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, s.dialect.rebind(`DELETE FROM audit WHERE at < ?`), s.dialect.ts(t))
	if err != nil {
		return 0, fmt.Errorf("store: delete audit: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete audit: %w", err)
	}
	return n, nil
}
