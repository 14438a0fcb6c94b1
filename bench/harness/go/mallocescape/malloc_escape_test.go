// Package mallocescape holds heap-allocating versions of the Go runtime's
// malloc benchmarks (BenchmarkMalloc8, Malloc16, MallocTypeInfo8,
// MallocTypeInfo16 and MallocLargeStruct in
// $GOROOT/src/runtime/malloc_test.go), run by ../../go-malloc.sh --escape.
//
// Why: in the runtime's versions the new object's address only flows into
// a uintptr, so the compiler's escape analysis proves the object does not
// outlive the iteration and puts it on the stack. With Go 1.19,
// `go test -bench Malloc -benchmem runtime` reports 0 allocs/op for all
// five: they time stack zeroing, not mallocgc. Here each iteration also
// stores the pointer into a package-level variable, which makes the object
// escape, so every iteration is one mallocgc call (-benchmem: 1 allocs/op).
// The store is an ordinary pointer write (with the write barrier check the
// compiler emits for any heap pointer store); the address is XORed into a
// sink as in the runtime's versions. Shapes, the same as the runtime's:
//
//	Malloc8            new(int64)                 8 B, no pointers
//	Malloc16           new([2]int64)              16 B, no pointers
//	MallocTypeInfo8    new(struct{ p [1]*int })   8 B, one pointer
//	MallocTypeInfo16   new(struct{ p [2]*int })   16 B, two pointers
//	MallocLargeStruct  make([]LargeStruct, 2)     2 x 16 slices = 768 B
//
// Not a harness workload: it has no result lines, only `go test -bench`
// output, which go-malloc.sh summarises.
package mallocescape

import (
	"testing"
	"unsafe"
)

var (
	addrSink   uintptr
	sink8      *int64
	sink16     *[2]int64
	sinkInfo8  *struct{ p [1]*int }
	sinkInfo16 *struct{ p [2]*int }
	sinkLarge  []largeStruct
)

// largeStruct is the runtime test's LargeStruct: sixteen byte slices.
type largeStruct struct {
	x [16][]byte
}

func BenchmarkMalloc8(b *testing.B) {
	var x uintptr
	for i := 0; i < b.N; i++ {
		p := new(int64)
		sink8 = p
		x ^= uintptr(unsafe.Pointer(p))
	}
	addrSink = x
}

func BenchmarkMalloc16(b *testing.B) {
	var x uintptr
	for i := 0; i < b.N; i++ {
		p := new([2]int64)
		sink16 = p
		x ^= uintptr(unsafe.Pointer(p))
	}
	addrSink = x
}

func BenchmarkMallocTypeInfo8(b *testing.B) {
	var x uintptr
	for i := 0; i < b.N; i++ {
		p := new(struct{ p [1]*int })
		sinkInfo8 = p
		x ^= uintptr(unsafe.Pointer(p))
	}
	addrSink = x
}

func BenchmarkMallocTypeInfo16(b *testing.B) {
	var x uintptr
	for i := 0; i < b.N; i++ {
		p := new(struct{ p [2]*int })
		sinkInfo16 = p
		x ^= uintptr(unsafe.Pointer(p))
	}
	addrSink = x
}

func BenchmarkMallocLargeStruct(b *testing.B) {
	var x uintptr
	for i := 0; i < b.N; i++ {
		p := make([]largeStruct, 2)
		sinkLarge = p
		x ^= uintptr(unsafe.Pointer(&p[0]))
	}
	addrSink = x
}
