// cpubound: CPU-bound benchmark workload: a sieve of Eratosthenes up to N repeated ROUNDS times plus a hash loop, in one goroutine; prints the prime count and a checksum. Run: cpubound [N=2000000] [ROUNDS=10].
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	n, rounds := 2000000, 10
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		rounds, _ = strconv.Atoi(os.Args[2])
	}
	composite := make([]bool, n+1)
	primes := 0
	var h uint64 = 1469598103934665603
	for r := 0; r < rounds; r++ {
		for i := range composite {
			composite[i] = false
		}
		primes = 0
		for i := 2; i <= n; i++ {
			if !composite[i] {
				primes++
				h = (h ^ uint64(i)) * 1099511628211
				for j := i * i; j <= n; j += i {
					composite[j] = true
				}
			}
		}
	}
	fmt.Println("primes", primes, "checksum", h)
}
