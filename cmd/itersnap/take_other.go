//go:build !linux

package main

import (
	"context"
	"errors"

	"github.com/itersnap/itersnap/snapshot"
)

// collect fails at once elsewhere: the collectors read a Linux kernel. Every
// analysis command works on any OS, on a database copied off the host.
func (o *takeOptions) collect(context.Context, snapshot.Filter) (*snapshot.Snapshot, error) {
	return nil, errors.New("take needs Linux (it reads the running kernel); list, show, diff and report work here on a copied database")
}

// unpin has nothing to do: only Linux takes pin programs.
func unpin(string) error { return nil }
