package main

// The readable output of the operator commands; --json prints the answers as they come.

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func printDelivered(w io.Writer, answer map[string]any, user, what string) {
	if answer["delivered"] == true {
		fmt.Fprintf(w, "%sdelivered to user %s\n", what, user)
		return
	}
	fmt.Fprintf(w, "%snot delivered: user %s has no registered socket\n", what, user)
}

// sockets says "1 socket" or "N sockets" from the answer's recipients.
func sockets(answer map[string]any) string {
	n, _ := answer["recipients"].(float64)
	if n == 1 {
		return "1 socket"
	}
	return strconv.FormatFloat(n, 'f', -1, 64) + " sockets"
}

// printStatus prints the status as aligned "key: value" lines; memory in MiB, uptime as a
// duration. Fields the server adds later are printed too, after the known ones.
func printStatus(w io.Writer, answer map[string]any) {
	type line struct{ k, v string }
	var lines []line
	seen := map[string]bool{"success": true}
	add := func(k string, v any) {
		seen[k] = true
		if v != nil {
			lines = append(lines, line{k, plain(v)})
		}
	}
	add("status", answer["status"])
	add("connections", answer["connections"])
	add("rooms", answer["rooms"])
	if up, ok := answer["uptime"].(float64); ok {
		seen["uptime"] = true
		lines = append(lines, line{"uptime", (time.Duration(up) * time.Second).String()})
	}
	if mem, ok := answer["memory"].(map[string]any); ok {
		seen["memory"] = true
		for _, k := range sortedKeys(mem) {
			v := plain(mem[k])
			if n, ok := mem[k].(float64); ok {
				v = fmt.Sprintf("%.1f MiB", n/(1<<20))
			}
			lines = append(lines, line{"memory." + k, v})
		}
	}
	add("timestamp", answer["timestamp"])
	for _, k := range sortedKeys(answer) {
		if !seen[k] {
			lines = append(lines, line{k, plain(answer[k])})
		}
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(l.k))
	}
	for _, l := range lines {
		fmt.Fprintf(w, "%-*s %s\n", width+1, l.k+":", l.v)
	}
}

// printPlugins prints one row per plugin; a skipped file's reason goes in the last column.
func printPlugins(w io.Writer, answer map[string]any) {
	list, _ := answer["plugins"].([]any)
	if len(list) == 0 {
		fmt.Fprintln(w, "no plugins")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tSTATE\tRESTARTS\tPID\tROUTES\tERROR")
	for _, item := range list {
		p, _ := item.(map[string]any)
		pid := "-"
		if n, ok := p["pid"].(float64); ok && n > 0 {
			pid = plain(n)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(p["name"]), orDash(p["version"]),
			orDash(p["state"]), orDash(p["restarts"]), pid, routes(p["routes"]), orDash(p["error"]))
	}
	_ = tw.Flush()
}

// routes summarises a plugin's routes: "events: a,b; messages: c".
func routes(v any) string {
	r, _ := v.(map[string]any)
	var parts []string
	for _, kind := range []string{"events", "messages", "actions"} {
		list, _ := r[kind].([]any)
		if len(list) == 0 {
			continue
		}
		names := make([]string, len(list))
		for i, n := range list {
			names[i] = plain(n)
		}
		parts = append(parts, kind+": "+strings.Join(names, ","))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

func orDash(v any) string {
	if s := plain(v); s != "" {
		return s
	}
	return "-"
}

// plain prints a decoded JSON value without Go's float formatting.
func plain(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
