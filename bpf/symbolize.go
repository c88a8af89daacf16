package bpf

import (
	"bytes"
	"fmt"
	"strconv"
)

// maxAddrs is the size of the addrs map in itersnap.bpf.c.
const maxAddrs = 32768

// Symbolize resolves kernel text addresses to "function+0xoff/0xsize
// [module]" in the kernel with %pB, the format /proc/PID/stack prints. It
// costs one iterator pass over the unique addresses, and works when
// kptr_restrict hides /proc/kallsyms. An address that does not resolve comes
// back as its hex value.
func (o *Objects) Symbolize(addrs []uint64) (map[uint64]string, error) {
	out := make(map[uint64]string, len(addrs))
	prev := 0
	for start := 0; start < len(addrs); start += maxAddrs {
		chunk := addrs[start:min(start+maxAddrs, len(addrs))]
		// Zero what an earlier, longer chunk left behind: the program skips
		// zero slots.
		vals := make([]uint64, max(len(chunk), prev))
		copy(vals, chunk)
		keys := make([]uint32, len(vals))
		for i := range keys {
			keys[i] = uint32(i)
		}
		if _, err := o.objs.Addrs.BatchUpdate(keys, vals, nil); err != nil {
			return nil, fmt.Errorf("write addresses to symbolize: %w", err)
		}
		prev = len(chunk)

		data, err := run(o.objs.Symbolize, o.objs.Addrs)
		if err != nil {
			return nil, err
		}
		if err := parseSymbols(data, chunk, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseSymbols reads the symbolize iterator's output, one "KEY SYMBOL" line
// per address, KEY indexing chunk, into out. A line it cannot read is an
// error, never a panic (FuzzParseSymbols).
func parseSymbols(data []byte, chunk []uint64, out map[uint64]string) error {
	for line := range bytes.Lines(data) {
		key, sym, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\n")), []byte(" "))
		if !ok {
			return fmt.Errorf("symbolize: bad line %q", line)
		}
		i, err := strconv.Atoi(string(key))
		if err != nil || i < 0 || i >= len(chunk) {
			return fmt.Errorf("symbolize: bad line %q", line)
		}
		out[chunk[i]] = string(sym)
	}
	return nil
}
