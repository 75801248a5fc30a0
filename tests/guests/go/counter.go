// counter: 4 goroutines, each every INTERVAL_MS prints "g G n N t UNIX_NS" (its own counter and the wall clock) until each has printed COUNT lines (0: forever); continuity tests check that each counter goes up by one with no gap. Not deterministic in order or time: not compared with native byte for byte. Run: counter [COUNT=20] [INTERVAL_MS=50].
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	count, interval := 20, 50
	if len(os.Args) > 1 {
		count, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		interval, _ = strconv.Atoi(os.Args[2])
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for n := 1; count == 0 || n <= count; n++ {
				mu.Lock()
				fmt.Fprintf(out, "g %d n %d t %d\n", g, n, time.Now().UnixNano())
				out.Flush()
				mu.Unlock()
				time.Sleep(time.Duration(interval) * time.Millisecond)
			}
		}(g)
	}
	wg.Wait()
	fmt.Fprintln(out, "done")
	out.Flush()
}
