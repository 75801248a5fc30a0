// goroutines: 64 goroutines across OS threads (some locked to their own thread) compute disjoint sums; prints the totals. Run: goroutines (no args).
package main

import (
	"fmt"
	"runtime"
	"sync"
)

func work(id int) uint64 {
	h := uint64(id) * 0x9e3779b97f4a7c15
	for i := 0; i < 200000; i++ {
		h ^= h << 13
		h ^= h >> 7
		h ^= h << 17
		if i%50000 == 0 {
			runtime.Gosched()
		}
	}
	return h
}

func main() {
	const n = 64
	results := make([]uint64, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			if id%8 == 0 {
				runtime.LockOSThread() // forces extra OS threads
				defer runtime.UnlockOSThread()
			}
			results[id] = work(id)
		}(i)
	}
	wg.Wait()
	var x uint64
	for i, r := range results {
		x ^= r * uint64(i+1)
	}
	fmt.Printf("goroutines %d xor %016x\n", n, x)
	fmt.Println("done")
}
