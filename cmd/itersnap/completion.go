package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/store"
)

// completionLockTimeout bounds how long a completion waits for the
// database behind a take's commit: a shell waiting on Tab is worse than
// no suggestions.
const completionLockTimeout = 300 * time.Millisecond

// addCompletions enables cobra's `completion bash|zsh|fish|powershell`
// command and teaches it itersnap's values: snapshot references from the
// database for show, diff, report and copy, and the values of --format,
// --only and --collector.
func addCompletions(root *cobra.Command, g *globalOptions) {
	root.CompletionOptions.DisableDefaultCmd = false
	root.CompletionOptions.HiddenDefaultCmd = false
	refs := map[string]int{"show": 1, "diff": 2, "report": 2, "copy": -1} // -1: any number
	for _, c := range root.Commands() {
		if n, ok := refs[c.Name()]; ok {
			c.ValidArgsFunction = completeRefs(g, n)
		}
		if c.Flags().Lookup("only") != nil {
			_ = c.RegisterFlagCompletionFunc("only", completeOnly)
		}
		if c.Flags().Lookup("format") != nil { // only commands that write records have it
			_ = c.RegisterFlagCompletionFunc("format", completeFormat)
		}
		if c.Flags().Lookup("collector") != nil {
			_ = c.RegisterFlagCompletionFunc("collector", cobra.FixedCompletions(
				[]string{collectorAuto + "\tBPF, else /proc with a warning", collectorBPF + "\tBPF iterators or fail", collectorProcfs + "\tread /proc"},
				cobra.ShellCompDirectiveNoFileComp))
		}
	}
}

// completeRefs suggests `latest` and every snapshot ID in the database, each
// with its time and label, for commands taking up to max references.
func completeRefs(g *globalOptions, max int) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if max >= 0 && len(args) >= max {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		db, err := store.Open(g.db, store.Options{ReadOnly: true, Timeout: completionLockTimeout})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer db.Close()
		entries, err := db.List()
		if err != nil || len(entries) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		last := entries[len(entries)-1]
		out := []cobra.Completion{cobra.CompletionWithDesc("latest", fmt.Sprintf("snapshot %d, %s", last.ID, refDescription(last)))}
		// Newest first: the ones an engineer wants during an incident.
		for i := len(entries) - 1; i >= 0; i-- {
			out = append(out, cobra.CompletionWithDesc(strconv.FormatUint(entries[i].ID, 10), refDescription(entries[i])))
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
	}
}

// refDescription is a snapshot's local time and label, in one line that no
// label can break: completion descriptions end at a newline or tab.
func refDescription(e store.Entry) string {
	d := e.Meta.Time.Local().Format("2006-01-02 15:04:05")
	if e.Meta.Label != "" {
		d += " " + printableLabel(e.Meta.Label)
	}
	return d
}

// printableLabel quotes a label holding control characters or invalid
// UTF-8 (Go quoting: \n, \t, \x1b, \xff); other labels are kept as they are.
func printableLabel(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strconv.Quote(s)
}

// completeOnly completes the comma-separated kinds of --only: the kinds not
// yet given, after those that are.
func completeOnly(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	done, _ := cutLast(toComplete, ",")
	given := strings.Split(done, ",")
	var out []cobra.Completion
	for _, k := range diff.AllKinds {
		if slices.Contains(given, string(k)) {
			continue
		}
		if done == "" {
			out = append(out, string(k))
		} else {
			out = append(out, done+","+string(k))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// cutLast splits s around the last sep: ("a,b,c", ",") is "a,b" and "c".
func cutLast(s, sep string) (before, after string) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):]
	}
	return "", s
}

// completeFormat offers the formats the command takes.
func completeFormat(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	extra := cmd.Annotations[formatsAnnotation]
	if extra == "none" {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return append(slices.Clone(formats), strings.Fields(extra)...), cobra.ShellCompDirectiveNoFileComp
}
