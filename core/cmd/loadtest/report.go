package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// row is one line of the final table: a figure, and its target when it has one.
type row struct {
	Scenario string
	Metric   string
	Value    string
	Target   string
	Verdict  string // "ok", "MISSED", "FAILED" or "" for figures without a target
}

// info is a figure without a target.
func info(scenario, metric, value string) row {
	return row{Scenario: scenario, Metric: metric, Value: value}
}

// atMost is a figure that must not exceed limit; value and limit share format's unit.
func atMost(scenario, metric string, v, limit float64, format string) row {
	return judged(scenario, metric, v <= limit, fmt.Sprintf(format, v), "<= "+fmt.Sprintf(format, limit))
}

// below is a figure that must stay under limit.
func below(scenario, metric string, v, limit float64, format string) row {
	return judged(scenario, metric, v < limit, fmt.Sprintf(format, v), "< "+fmt.Sprintf(format, limit))
}

// atLeast is a figure that must reach limit.
func atLeast(scenario, metric string, v, limit float64, format string) row {
	return judged(scenario, metric, v >= limit, fmt.Sprintf(format, v), ">= "+fmt.Sprintf(format, limit))
}

func judged(scenario, metric string, ok bool, value, target string) row {
	r := row{Scenario: scenario, Metric: metric, Value: value, Target: target, Verdict: "ok"}
	if !ok {
		r.Verdict = "MISSED"
	}
	return r
}

// failed is the row of a scenario that could not finish.
func failed(scenario string, err error) row {
	msg := strings.SplitN(err.Error(), "\n", 2)[0]
	return row{Scenario: scenario, Metric: "error", Value: msg, Verdict: "FAILED"}
}

// printTable writes rows as aligned text, or as a markdown table.
func printTable(w io.Writer, rows []row, markdown bool) {
	head := []string{"scenario", "metric", "value", "target", "verdict"}
	cells := make([][]string, 0, len(rows))
	for _, r := range rows {
		cells = append(cells, []string{r.Scenario, r.Metric, r.Value, r.Target, r.Verdict})
	}
	if markdown {
		fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
		fmt.Fprintf(w, "|%s\n", strings.Repeat(" --- |", len(head)))
		for _, c := range cells {
			for i := range c {
				c[i] = strings.ReplaceAll(c[i], "|", `\|`)
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(c, " | "))
		}
		return
	}
	width := make([]int, len(head))
	for i, h := range head {
		width[i] = len(h)
	}
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], len(s))
		}
	}
	line := func(c []string) {
		var b strings.Builder
		for i, s := range c {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(s)
			if i < len(c)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-len(s)))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, c := range cells {
		line(c)
	}
}

// percentile returns the q-quantile (0 < q <= 1) of sorted by the nearest-rank method.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// merge concatenates latency samples and sorts them.
func merge(parts [][]time.Duration) []time.Duration {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	all := make([]time.Duration, 0, n)
	for _, p := range parts {
		all = append(all, p...)
	}
	slices.Sort(all)
	return all
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// us formats a duration in microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
