package sync

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// TestRulesDocMatchesTests keeps docs/sync-rules.md and Decide together:
// every row has a test case, and every rule the tests see is a row.
func TestRulesDocMatchesTests(t *testing.T) {
	src, err := os.ReadFile("../../docs/sync-rules.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\| ([A-Z][0-9]+) \|`).FindAllStringSubmatch(string(src), -1) {
		if doc[m[1]] {
			t.Errorf("rule %s appears twice in the doc", m[1])
		}
		doc[m[1]] = true
	}
	if len(doc) < 10 {
		t.Fatalf("found only %d rule rows in the doc: has the table format changed?", len(doc))
	}
	tested := map[string]bool{}
	for _, c := range decideCases() {
		f := newFixture(t)
		c.setup(f)
		tested[c.rule] = true
		tested[Decide(f.input()).Rule] = true
	}
	for id := range doc {
		if !tested[id] {
			t.Errorf("rule %s is in docs/sync-rules.md but has no test case", id)
		}
	}
	var extra []string
	for id := range tested {
		if !doc[id] {
			extra = append(extra, id)
		}
	}
	slices.Sort(extra)
	if len(extra) > 0 {
		t.Errorf("rules returned by Decide but missing from docs/sync-rules.md: %v", extra)
	}
}
