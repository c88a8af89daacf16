//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// run attaches prog as an iterator and reads its whole output at once, for
// tests that look at the raw stream.
func run(prog *ebpf.Program) ([]byte, error) {
	it, err := link.AttachIter(link.IterOptions{Program: prog})
	if err != nil {
		return nil, fmt.Errorf("attach iterator %s: %w", prog, err)
	}
	defer it.Close()
	r, err := it.Open()
	if err != nil {
		return nil, fmt.Errorf("open iterator %s: %w", prog, err)
	}
	defer r.Close()
	var buf []byte
	chunk := make([]byte, 64<<10)
	for {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		switch {
		case err == nil && n == 0, errors.Is(err, io.EOF):
			return buf, nil
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		case err != nil:
			return nil, err
		}
	}
}
