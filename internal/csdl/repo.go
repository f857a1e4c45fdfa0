package csdl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// GraphV1RelPath is Graph's v1.0 CSDL relative to the repository root.
const GraphV1RelPath = "../shared/contracts/graph-v1.0-Prod.csdl"

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("csdl: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("csdl: no go.mod found above the working directory")
		}
		dir = parent
	}
}

// GraphV1Path returns the absolute path of Graph's v1.0 CSDL
// (GraphV1RelPath resolved against RepoRoot); the file may not exist.
func GraphV1Path() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Clean(filepath.Join(root, GraphV1RelPath)), nil
}

// GraphV1 loads Graph's v1.0 CSDL for a test. It skips the test, with the
// path in the message, only when the file is absent; any other failure
// fails the test.
func GraphV1(tb testing.TB) *Model {
	tb.Helper()
	p, err := GraphV1Path()
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		tb.Skipf("Graph CSDL not found at %s (expected at <repo>/%s); skipping contract test", p, GraphV1RelPath)
	}
	m, err := Load(p)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
