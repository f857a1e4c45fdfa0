package main

import (
	"os"
	"strings"
	"testing"
)

// TestNoGraphSDK keeps Microsoft's Graph SDK out of the module: it costs
// minutes and gigabytes per cold build on our 2-core machines (see
// ../shared/reference/go-choices.md §5); we use thin clients in internal/graph.
func TestNoGraphSDK(t *testing.T) {
	banned := []string{
		"github.com/microsoftgraph/msgraph-sdk-go",
		"github.com/microsoftgraph/msgraph-beta-sdk-go",
	}
	for _, f := range []string{"../../go.mod", "../../go.sum"} {
		data, err := os.ReadFile(f)
		if err != nil {
			if f == "../../go.sum" && os.IsNotExist(err) {
				continue
			}
			t.Fatalf("read %s: %v", f, err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			for _, b := range banned {
				if strings.Contains(line, b) {
					t.Errorf("%s depends on %s: %q; use internal/graph instead", f, b, strings.TrimSpace(line))
				}
			}
		}
	}
}
