// gomaxprocs: GOMAXPROCS=2 (set by the program), two goroutines spinning at once must both make progress; prints the setting and results. Run: gomaxprocs (no args).
package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

func main() {
	runtime.GOMAXPROCS(2)
	fmt.Println("GOMAXPROCS", runtime.GOMAXPROCS(0))
	// Two goroutines that each announce themselves and then spin until the other has: needs two threads running at
	// once or preemption between them (Go preempts a spinning goroutine with SIGURG).
	var a, b int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		atomic.StoreInt64(&a, 1)
		for atomic.LoadInt64(&b) == 0 {
		}
	}()
	go func() {
		defer wg.Done()
		atomic.StoreInt64(&b, 1)
		for atomic.LoadInt64(&a) == 0 {
		}
	}()
	wg.Wait()
	fmt.Println("both ran", atomic.LoadInt64(&a) == 1 && atomic.LoadInt64(&b) == 1)
	// A tight loop without function calls (only async preemption stops it) beside a goroutine that must finish. The
	// main goroutine waits until the spinner runs, so the output does not depend on how soon a second thread wakes.
	var stop, started int32
	done := make(chan bool)
	go func() {
		x := 0
		atomic.StoreInt32(&started, 1)
		for {
			x++
			if atomic.LoadInt32(&stop) != 0 {
				break
			}
		}
		done <- x > 0
	}()
	for atomic.LoadInt32(&started) == 0 {
		runtime.Gosched()
	}
	sum := 0
	for i := 0; i < 1000000; i++ {
		sum += i
	}
	atomic.StoreInt32(&stop, 1)
	fmt.Println("spinner ran", <-done, "sum", sum)
	fmt.Println("NumCPU >= 1", runtime.NumCPU() >= 1)
	fmt.Println("done")
}
