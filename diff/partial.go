package diff

import (
	"fmt"
	"strings"
)

// checkPartial notes the snapshots of the range that are partial (taken
// without the privilege to read every stack or fd): a thread without a
// stack has no unchanged stack to report, and a process whose fds were
// not read leaks nothing, so the findings can miss what those hide.
func checkPartial(snaps []Head) []string {
	var ids []string
	var what string
	for _, s := range snaps {
		if s.Meta.Partial != "" {
			ids = append(ids, fmt.Sprint(s.ID))
			what = s.Meta.Partial
		}
	}
	switch len(ids) {
	case 0:
		return nil
	case 1:
		return []string{fmt.Sprintf("snapshot %s is partial (%s): findings may miss what it could not read", ids[0], what)}
	}
	return []string{fmt.Sprintf("snapshots %s are partial (the last: %s): findings may miss what they could not read", strings.Join(ids, ", "), what)}
}
