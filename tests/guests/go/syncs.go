// syncs: sync.Mutex, RWMutex, WaitGroup, Once, Cond and atomics under contention from many goroutines; prints the totals. Run: syncs (no args).
package main

import (
	"fmt"
	"sync"
	"sync/atomic"
)

func main() {
	var mu sync.Mutex
	var wg sync.WaitGroup
	counter := 0
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20000; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fmt.Println("mutex counter", counter)

	var rw sync.RWMutex
	m := map[int]int{}
	for g := 0; g < 8; g++ {
		wg.Add(2)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				rw.Lock()
				m[g*1000+i] = i
				rw.Unlock()
			}
		}(g)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				rw.RLock()
				_ = len(m)
				rw.RUnlock()
			}
		}()
	}
	wg.Wait()
	fmt.Println("rwmutex map size", len(m))

	var once sync.Once
	var onceCount int64
	for g := 0; g < 10; g++ {
		wg.Add(1)
		go func() { defer wg.Done(); once.Do(func() { atomic.AddInt64(&onceCount, 1) }) }()
	}
	wg.Wait()
	fmt.Println("once ran", onceCount)

	var atom int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50000; i++ {
				atomic.AddInt64(&atom, 2)
			}
		}()
	}
	wg.Wait()
	fmt.Println("atomic total", atom)

	// Cond: a queue with a producer and 4 consumers.
	cmu := sync.Mutex{}
	cond := sync.NewCond(&cmu)
	queue := []int{}
	closed := false
	consumed := make([]int, 4)
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for {
				cmu.Lock()
				for len(queue) == 0 && !closed {
					cond.Wait()
				}
				if len(queue) == 0 && closed {
					cmu.Unlock()
					return
				}
				v := queue[0]
				queue = queue[1:]
				cmu.Unlock()
				consumed[c] += v
			}
		}(c)
	}
	for i := 1; i <= 1000; i++ {
		cmu.Lock()
		queue = append(queue, i)
		cmu.Unlock()
		cond.Signal()
	}
	cmu.Lock()
	closed = true
	cmu.Unlock()
	cond.Broadcast()
	wg.Wait()
	total := 0
	for _, v := range consumed {
		total += v
	}
	fmt.Println("cond consumed total", total)
	fmt.Println("done")
}
