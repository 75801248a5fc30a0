// chanselect: unbuffered and buffered channels, select with time.After/NewTimer/NewTicker, timer Stop/Reset, a closed channel, a default case; prints the order of events. Run: chanselect (no args).
package main

import (
	"fmt"
	"time"
)

func main() {
	// Producer/consumer over an unbuffered channel.
	ch := make(chan int)
	go func() {
		for i := 1; i <= 5; i++ {
			ch <- i * i
		}
		close(ch)
	}()
	sum := 0
	for v := range ch {
		sum += v
	}
	fmt.Println("unbuffered sum", sum)

	// Buffered channel fill and drain.
	b := make(chan string, 3)
	b <- "a"
	b <- "b"
	b <- "c"
	select {
	case b <- "d":
		fmt.Println("buffered: sent beyond capacity (wrong)")
	default:
		fmt.Println("buffered: full, default taken")
	}
	fmt.Println("buffered drained", <-b, <-b, <-b, len(b))

	// A value that arrives before a timeout.
	fast := make(chan string)
	go func() { time.Sleep(10 * time.Millisecond); fast <- "value" }()
	select {
	case v := <-fast:
		fmt.Println("select got", v)
	case <-time.After(2 * time.Second):
		fmt.Println("select timed out (wrong)")
	}

	// A timeout that fires before a value that never comes.
	never := make(chan string)
	start := time.Now()
	select {
	case <-never:
		fmt.Println("never channel received (wrong)")
	case <-time.After(50 * time.Millisecond):
		fmt.Println("timeout fired, waited >= 50ms:", time.Since(start) >= 50*time.Millisecond)
	}

	// Timer stop and reset.
	t := time.NewTimer(time.Hour)
	fmt.Println("timer stopped before firing:", t.Stop())
	t.Reset(20 * time.Millisecond)
	<-t.C
	fmt.Println("timer fired after reset")

	// Ticker: three ticks, then stop.
	tk := time.NewTicker(15 * time.Millisecond)
	n := 0
	for range tk.C {
		n++
		if n == 3 {
			break
		}
	}
	tk.Stop()
	fmt.Println("ticker ticks", n)

	// Several goroutines racing to one select loop; count per source.
	a, c := make(chan int), make(chan int)
	done := make(chan struct{})
	go func() { for i := 0; i < 100; i++ { a <- i }; done <- struct{}{} }()
	go func() { for i := 0; i < 100; i++ { c <- i }; done <- struct{}{} }()
	na, nc, finished := 0, 0, 0
	for finished < 2 {
		select {
		case <-a:
			na++
		case <-c:
			nc++
		case <-done:
			finished++
		}
	}
	fmt.Println("select loop counts", na, nc)

	// Closed channel reads zero values immediately.
	cl := make(chan int)
	close(cl)
	v, ok := <-cl
	fmt.Println("closed channel", v, ok)
	fmt.Println("done")
}
