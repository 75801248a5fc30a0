// gcpressure: allocates ~1 GiB in total in short-lived objects while keeping a linked structure live across many GCs; checks the live data afterwards. Run: gcpressure [MIB_TOTAL=1024].
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
)

var keep []byte // the last chunk escapes here, so every chunk is a heap allocation

type node struct {
	next *node
	val  uint64
	pad  [48]byte
}

func main() {
	total := 1024
	if len(os.Args) > 1 {
		total, _ = strconv.Atoi(os.Args[1])
	}
	// A live list of 100k nodes (~8 MiB).
	var head *node
	for i := 0; i < 100000; i++ {
		head = &node{next: head, val: uint64(i) * 2654435761}
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	// Garbage: slices of 64 KiB, each dropped at once.
	var sink uint64
	chunks := total * 16
	for i := 0; i < chunks; i++ {
		b := make([]byte, 64<<10)
		keep = b
		b[i%len(b)] = byte(i)
		sink += uint64(b[i%len(b)])
		if i%1024 == 0 {
			runtime.GC()
		}
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	var sum uint64
	n := 0
	for p := head; p != nil; p = p.next {
		sum += p.val
		n++
	}
	fmt.Println("live nodes", n, "sum", sum)
	fmt.Println("garbage sink", sink)
	fmt.Println("gc ran", after.NumGC > before.NumGC+uint32(chunks/1024)/2)
	fmt.Println("heap in use below 256 MiB", after.HeapInuse < 256<<20)
	fmt.Println("done")
}
