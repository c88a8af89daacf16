package prefault

import (
	"errors"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestPopulate checks that Populate maps the pages inside what it is
// given, and only maps them: what they hold stays.
func TestPopulate(t *testing.T) {
	page := os.Getpagesize()
	mem := make([]byte, 64*page) // large: its own pages, fresh from the kernel
	mem[0], mem[5*page+7], mem[len(mem)-1] = 1, 2, 3
	inner := mem[page/2 : len(mem)-page/2] // starts and ends inside a page
	Populate(inner)
	if mem[0] != 1 || mem[5*page+7] != 2 || mem[len(mem)-1] != 3 {
		t.Fatal("Populate changed the memory")
	}
	if err := unix.Madvise(mem[:page], unix.MADV_POPULATE_WRITE); errors.Is(err, unix.EINVAL) {
		t.Skip("the kernel has no MADV_POPULATE_WRITE (Linux 5.14)")
	}
	resident := make([]byte, len(mem)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&resident[0]))); errno != 0 {
		t.Fatal(errno)
	}
	if uintptr(unsafe.Pointer(&mem[0]))%uintptr(page) != 0 {
		t.Fatal("a large allocation does not start a page")
	}
	for i := 1; i < len(resident)-1; i++ {
		if resident[i]&1 == 0 {
			t.Errorf("page %d of %d is not mapped", i, len(resident))
		}
	}
	Populate(nil)
	Populate(mem[1:2])
}
