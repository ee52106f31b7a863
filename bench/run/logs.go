package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"slices"
)

// logSummary counts the warnings and errors that a Caddy process logged,
// so that a run which looks fine in numbers but not in logs stands out.
type logSummary struct {
	Process  string   `json:"process"`
	Warnings int      `json:"warnings"`
	Errors   int      `json:"errors"`
	Samples  []string `json:"samples,omitempty"` // up to five distinct messages
}

// summarizeLog reads a Caddy JSON log from where the process became
// ready to where it was asked to stop (to the end, if it died). Lines
// that are not JSON, such as a panic's stack trace, count as errors.
func summarizeLog(p *proc) logSummary {
	s := logSummary{Process: p.name}
	f, err := os.Open(p.log)
	if err != nil {
		return s
	}
	defer f.Close()
	if _, err := f.Seek(p.ready, io.SeekStart); err != nil {
		return s
	}
	var r io.Reader = f
	if p.stopping >= p.ready {
		r = io.LimitReader(f, p.stopping-p.ready)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct{ Level, Logger, Msg string }
		text := sc.Text()
		if json.Unmarshal([]byte(text), &line) != nil {
			line.Level, line.Msg = "error", text
		}
		switch line.Level {
		case "warn":
			s.Warnings++
		case "error", "panic", "fatal":
			s.Errors++
		default:
			continue
		}
		msg := line.Level + " " + line.Logger + ": " + line.Msg
		if len(s.Samples) < 5 && !slices.Contains(s.Samples, msg) {
			s.Samples = append(s.Samples, msg)
		}
	}
	return s
}
