// pingpong: two goroutines hand a counter back and forth over unbuffered channels N times (GOMAXPROCS as the runtime chooses, so hand-offs cross threads); benchmark workload. Run: pingpong [N=200000].
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	n := 200000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	v := 0
	for i := 0; i < n; i++ {
		ping <- v
		v = <-pong
	}
	close(ping)
	fmt.Println("hand-offs", 2*n, "final", v)
}
