package config

import (
	"bytes"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Error is a configuration that cannot be used. Its text has one line per problem, each
// starting with file:line,column ("config.hcl:12,3-9: Invalid duration; ...").
type Error struct {
	Diagnostics hcl.Diagnostics
	files       map[string]*hcl.File
}

func newError(diags hcl.Diagnostics, files map[string]*hcl.File) *Error {
	return &Error{Diagnostics: diags, files: files}
}

func (e *Error) Error() string {
	lines := make([]string, 0, len(e.Diagnostics))
	for _, d := range e.Diagnostics {
		line := d.Summary
		if d.Detail != "" {
			line += "; " + d.Detail
		}
		if d.Subject != nil {
			line = d.Subject.String() + ": " + line
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// Pretty renders the diagnostics as HCL does, with the offending source line quoted, for a
// terminal of the given width (0 = no wrapping).
func (e *Error) Pretty(width uint, color bool) string {
	var buf bytes.Buffer
	w := hcl.NewDiagnosticTextWriter(&buf, e.files, width, color)
	_ = w.WriteDiagnostics(e.Diagnostics)
	return buf.String()
}

// rangeOf returns where the setting at path sits in the file or, when it is not written,
// the first of fallbacks that is written, else the nearest enclosing block. It is the start
// of the file when nothing matches, and nil for a Config built in code.
func (c *Config) rangeOf(path string, fallbacks ...string) *hcl.Range {
	if c.filename == "" {
		return nil
	}
	for _, p := range append([]string{path}, fallbacks...) {
		if r, ok := c.ranges[p]; ok {
			return &r
		}
	}
	for p := path; ; {
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
		if r, ok := c.ranges[p]; ok {
			return &r
		}
	}
	start := hcl.Pos{Line: 1, Column: 1}
	return &hcl.Range{Filename: c.filename, Start: start, End: start}
}
