package sdk

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeHelloIsTheExample: the plugin the README shows under "Writing a plugin" is
// examples/hello, which the plugin host's tests build and run.
func TestReadmeHelloIsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	hello, err := os.ReadFile("../examples/hello/main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Writing a plugin\n")
	if !ok {
		t.Fatal("README has no \"Writing a plugin\" section")
	}
	_, block, ok := strings.Cut(section, "```go\n")
	if !ok {
		t.Fatal("the section has no Go block")
	}
	block, _, _ = strings.Cut(block, "```\n")
	if block != string(hello) {
		t.Fatalf("the README's plugin differs from examples/hello/main.go:\n%s\n---\n%s", block, hello)
	}
}
