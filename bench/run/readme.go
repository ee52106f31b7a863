package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/template"
	"time"
)

// The markers that delimit the README's generated section. Everything
// between them is the template's, and is replaced at each -readme.
const (
	beginMarker = "<!-- bench:begin -->"
	endMarker   = "<!-- bench:end -->"
)

// readmeTemplate is the README's section: the prose that explains the
// figures, around the tables of a run. It lives here so that the prose is
// regenerated with the numbers, never left describing an older run.
//
//go:embed readme.md.tmpl
var readmeTemplate string

// readmeTmpl is readmeTemplate parsed; a template that does not parse is a
// bug of the build, caught by the tests.
var readmeTmpl = template.Must(template.New("readme").Parse(readmeTemplate))

// readmeData is what the template sees: the report, its methods and
// tables, and the name of its results JSON.
type readmeData struct {
	*report
	// Results is the results JSON's path relative to the README.
	Results string
}

// MachineLine describes the machine and how busy it was.
func (r *report) MachineLine() string {
	return fmt.Sprintf("%d CPU cores, %s, load average %s at the start and %s at the end, %s.",
		r.Host.NumCPU, r.Host.GoVersion, r.Host.LoadAvgStart, r.Host.LoadAvgEnd, r.Started.UTC().Format(time.DateOnly))
}

// ListEach is the number of tools each upstream of the list part serves.
func (r *report) ListEach() int { return r.Config.ListTools / max(r.Config.ListUpstreams, 1) }

// Windows describes the measured windows.
func (r *report) Windows() string {
	c := r.Config
	rounds := "rounds"
	if c.Rounds == 1 {
		rounds = "round"
	}
	return fmt.Sprintf("%v windows after a %v warm-up, %d %s, agents on the %s era", c.Duration, c.Warmup, c.Rounds, rounds, c.Era)
}

// renderReadme writes the section, markers included, for a README at
// readmePath.
func (r *report) renderReadme(w io.Writer, readmePath string) error {
	results := r.path
	if rel, err := filepath.Rel(filepath.Dir(readmePath), r.path); err == nil {
		results = filepath.ToSlash(rel)
	}
	var b bytes.Buffer
	if err := readmeTmpl.Execute(&b, readmeData{r, results}); err != nil {
		return fmt.Errorf("rendering the README section: %w", err)
	}
	_, err := fmt.Fprintf(w, "%s\n%s%s", beginMarker, collapseBlankLines(b.Bytes()), endMarker)
	return err
}

// collapseBlankLines leaves at most one blank line in a row, where the
// template's sections that did not run left several.
func collapseBlankLines(b []byte) []byte {
	b = bytes.TrimLeft(b, "\n")
	for bytes.Contains(b, []byte("\n\n\n")) {
		b = bytes.ReplaceAll(b, []byte("\n\n\n"), []byte("\n\n"))
	}
	return b
}

// splice replaces the part of doc from beginMarker to endMarker, both
// included, with section. doc must hold each marker once, in that order.
func splice(doc, section []byte) ([]byte, error) {
	begin, end := []byte(beginMarker), []byte(endMarker)
	if bytes.Count(doc, begin) != 1 || bytes.Count(doc, end) != 1 {
		return nil, fmt.Errorf("want one %s and one %s, found %d and %d", beginMarker, endMarker, bytes.Count(doc, begin), bytes.Count(doc, end))
	}
	i, j := bytes.Index(doc, begin), bytes.Index(doc, end)
	if j < i {
		return nil, errors.New(endMarker + " comes before " + beginMarker)
	}
	out := make([]byte, 0, len(doc)+len(section))
	out = append(out, doc[:i]...)
	out = append(out, section...)
	return append(out, doc[j+len(end):]...), nil
}

// rewriteReadme replaces the generated section of the README at path with
// this report's.
func (r *report) rewriteReadme(path string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var section bytes.Buffer
	if err := r.renderReadme(&section, path); err != nil {
		return err
	}
	out, err := splice(doc, section.Bytes())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, out, fi.Mode().Perm()); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "rewrote the performance section of", path)
	return nil
}
