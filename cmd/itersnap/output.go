package main

import (
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/output"
)

// Output formats: the record formats of package output, and exports for
// other tools (package export): show's folded stacks and pprof profile,
// diff's two-count folded stacks.
const (
	formatTable = string(output.Table)
	formatCSV   = string(output.CSV)
	formatJSON  = string(output.JSON)

	formatFolded     = "folded"
	formatPprof      = "pprof"
	formatFoldedDiff = "folded-diff"

	// For Prometheus (node_exporter's textfile collector): diff's findings
	// and list's take health.
	formatOpenMetrics = "openmetrics"
)

var formats = []string{formatTable, formatCSV, formatJSON}

// formatsAnnotation lists, in a command's Annotations, the formats it takes
// besides table, csv and json.
const formatsAnnotation = "itersnap/formats"

// bindOutput gives cmd, a command that writes records, its -o flag and,
// when withFormat, its --format flag. Commands that write no records have
// neither, so `take -o FILE` is bad usage rather than ignored.
func (g *globalOptions) bindOutput(cmd *cobra.Command, withFormat bool) {
	f := cmd.Flags()
	if withFormat {
		usage := "output `FORMAT`: " + strings.Join(formats, ", ") + " (json = JSON lines)"
		if extra := cmd.Annotations[formatsAnnotation]; extra != "" {
			usage += "; also " + strings.Join(strings.Fields(extra), ", ")
		}
		f.StringVar(&g.format, "format", formatTable, usage)
	}
	f.StringVarP(&g.output, "output", "o", "", "write to `FILE` instead of stdout (renamed into place when complete)")
}

// checkOutputFlags checks --format against what cmd writes, and -o. An
// export format given to a command that cannot write it is a usage error
// that says which commands can.
func checkOutputFlags(cmd *cobra.Command, g *globalOptions) error {
	if o := cmd.Flags().Lookup("output"); o != nil && o.Changed && g.output == "" {
		return usagef(`-o "": want a file name (or - for stdout)`)
	}
	if f := cmd.Flags().Lookup("format"); f == nil || !f.Changed {
		return nil // the default, table, is every command's
	}
	allowed := append(slices.Clone(formats), strings.Fields(cmd.Annotations[formatsAnnotation])...)
	if slices.Contains(allowed, g.format) {
		return nil
	}
	switch g.format {
	case formatFolded, formatPprof:
		return usagef("--format %s is for show, not %s: want %s", g.format, cmd.Name(), strings.Join(allowed, ", "))
	case formatFoldedDiff:
		return usagef("--format %s is for diff, not %s: want %s", g.format, cmd.Name(), strings.Join(allowed, ", "))
	}
	return usagef("unknown --format %q: want %s", g.format, strings.Join(allowed, ", "))
}

// misplacedOutputFlag rewrites pflag's "unknown flag" for --format or -o,
// given to a command that does not take it, into what the user needs to
// know: which commands do. ok is false for any other error.
func misplacedOutputFlag(cmd *cobra.Command, err error) (error, bool) {
	msg := err.Error()
	var name string
	switch {
	case strings.HasPrefix(msg, "unknown flag: --format"):
		name = "format"
	case strings.HasPrefix(msg, "unknown flag: --output"), strings.HasPrefix(msg, "unknown shorthand flag: 'o'"):
		name = "output"
	default:
		return err, false
	}
	var takers []string
	for _, c := range cmd.Root().Commands() {
		if c.Flags().Lookup(name) != nil {
			takers = append(takers, c.Name())
		}
	}
	flag := "--format"
	if name == "output" {
		flag = "-o"
	}
	return usagef("%s takes no %s: it is for %s", cmd.Name(), flag, strings.Join(takers, ", ")), true
}

// toStdout reports whether -o names stdout.
func toStdout(path string) bool { return path == "" || path == "-" }

// withOutput runs fn with where a command writes its records, stdout or -o
// FILE (renamed into place only when fn succeeds), and how: a table on a
// terminal fits its width unless --wide; a file gets every cell whole.
func (g *globalOptions) withOutput(stdout io.Writer, fn func(w io.Writer, opts output.Options) error) error {
	opts := output.Options{Format: output.Format(g.format)}
	if toStdout(g.output) {
		if !g.wide {
			opts.Width = output.TerminalWidth(stdout)
		}
		return fn(stdout, opts)
	}
	return output.ToFile(g.output, func(w io.Writer) error { return fn(w, opts) })
}
