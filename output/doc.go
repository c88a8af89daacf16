// Package output writes itersnap's records: typed columns defined once per
// record type (snapshots, threads, stacks, fds, findings, forget's plan), one
// writer per format (an aligned table, CSV, JSON lines), and the one rule by
// which names from the host are escaped.
//
// Names, paths, labels and stacks come from whoever runs a process, so they
// are hostile text:
//
//   - In a table, control characters (C0, DEL, C1), and so every escape
//     sequence, and invalid UTF-8 are written escaped: \n, \r, \t, \x1b,
//     \x7f and \xHH for the other C0 bytes and DEL, \u0085 for C1 code
//     points, \xff for a byte that is not UTF-8, and a backslash as \\. Nothing a
//     process chooses can drive the terminal or split a row, and 0xFF
//     (text/tabwriter's escape character) never reaches the tabwriter.
//   - CSV and JSON lines are always valid UTF-8: valid text is kept byte
//     for byte (encoding/csv's quoting and encoding/json's escaping take
//     care of newlines, commas and quotes), and each byte that is not
//     UTF-8 is written \xHH, the same in both formats.
//
// On a terminal a table fits its width: the wide columns (stacks, paths,
// targets, names) are cut with "…", stacks from their root end so that the
// leaf stays. Pipes and files get every cell whole (Options.Width 0).
//
// A new column is appended to its record type's list (SnapshotColumns,
// TaskColumns, StackColumns, FDColumns, FindingColumns, ForgetColumns),
// never inserted: scripts read columns by position. The README's "CSV
// columns" section lists them, and TestHeadersAsDocumented holds the two
// together.
//
// Nothing here prints by itself or knows a command-line flag: callers hand
// in the writer and the options.
package output
