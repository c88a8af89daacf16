package main

import (
	"github.com/spf13/cobra"
)

// defaultPinDir is where takes pin their BPF programs (bpf.DefaultPinDir;
// this file builds on every OS, package bpf on Linux only).
const defaultPinDir = "/sys/fs/bpf/itersnap"

func newUnpinCmd(g *globalOptions) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "unpin",
		Short: "Remove the BPF programs that takes keep loaded",
		Long: `Remove every pin under --pin-dir (default /sys/fs/bpf/itersnap): the BPF
programs and maps that takes leave loaded for the next take. The kernel
unloads them once no take is reading them; the next take loads and pins
them again (take --no-pin does not). Nothing pinned is not an error.
` + exitStatusHelp,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return unpin(dir)
		},
	}
	bindPinDir(cmd, &dir, g)
	return cmd
}

// bindPinDir adds --pin-dir, whose default comes from $ITERSNAP_PIN_DIR.
func bindPinDir(cmd *cobra.Command, dir *string, g *globalOptions) {
	cmd.Flags().StringVar(dir, "pin-dir", g.pinDirDefault, "bpffs `DIR` of the pinned programs (default: $ITERSNAP_PIN_DIR, else "+defaultPinDir+")")
	cmd.Flags().Lookup("pin-dir").DefValue = ""
}
