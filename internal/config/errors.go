package config

import "strings"

// Problem is one configuration error, e.g.
//
//	sync.conflict: "newst_wins" is not one of d365_wins, outlook_wins, newest_wins, manual (bookingsync.yaml:14)
type Problem struct {
	Key     string // key path, e.g. "azure.tenant_id"; a section for cross-key problems
	Message string // what is wrong
	Hint    string // how to fix it; may be empty
	Source  string // where the value came from: "file.yaml:12" or "$BOOKINGSYNC_X"; may be empty
}

// Error renders "key: message (hint; source)".
func (p Problem) Error() string {
	var b strings.Builder
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	var extra []string
	if p.Hint != "" {
		extra = append(extra, p.Hint)
	}
	if p.Source != "" {
		extra = append(extra, p.Source)
	}
	if len(extra) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(extra, "; "))
		b.WriteString(")")
	}
	return b.String()
}

// Error lists every problem found; its message has one problem per line.
// errors.As(err, new(Problem)) reaches the individual problems.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is/As.
func (e *Error) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// problems collects Problems and fills their Source from the recorded origins.
type problems struct {
	origins map[string]string
	list    []Problem
}

func (ps *problems) add(key, msg, hint string) {
	ps.list = append(ps.list, Problem{Key: key, Message: msg, Hint: hint, Source: ps.origins[key]})
}

func (ps *problems) addAt(key, msg, hint, source string) {
	ps.list = append(ps.list, Problem{Key: key, Message: msg, Hint: hint, Source: source})
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return &Error{Problems: ps.list}
}
