// nilpanic: a nil-pointer dereference (SIGSEGV) and an integer division by zero (SIGFPE) become runtime panics that recover() catches; also an explicit panic. Run: nilpanic (no args).
package main

import (
	"fmt"
	"os"
)

type T struct{ x int }

//go:noinline
func deref(p *T) int { return p.x }

//go:noinline
func div(a, b int) int { return a / b }

func try(name string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Printf("%s: recovered: %v\n", name, r)
		}
	}()
	f()
	fmt.Printf("%s: no panic (wrong)\n", name)
}

func main() {
	var p *T
	try("nil pointer", func() { _ = deref(p) })
	try("big offset from nil", func() {
		var a *[1 << 20]byte
		_ = a[1<<19]
	})
	zero := len(os.Args) - 1
	try("divide by zero", func() { _ = div(1, zero) })
	try("index out of range", func() { s := []int{1}; _ = s[zero+5] })
	try("explicit", func() { panic("boom") })
	fmt.Println("still running after", 5, "panics")
	fmt.Println("done")
}
