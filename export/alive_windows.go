package export

// alive cannot tell on Windows without opening the process: a temporary
// file is then taken for dead by its age alone.
func alive(int) bool { return true }
