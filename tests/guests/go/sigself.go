// sigself: os/signal.Notify for SIGUSR1/SIGUSR2/SIGHUP, signals sent to itself with syscall.Kill, received on the channel in order; signal.Ignore and Reset. Run: sigself (no args).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	c := make(chan os.Signal, 4)
	signal.Notify(c, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGHUP)
	for _, s := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGHUP} {
		if err := syscall.Kill(os.Getpid(), s); err != nil {
			fmt.Println("kill:", err)
		}
		select {
		case got := <-c:
			fmt.Println("received", got)
		case <-time.After(5 * time.Second):
			fmt.Println("no signal within 5s (wrong)")
		}
	}
	signal.Ignore(syscall.SIGUSR1)
	syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	select {
	case got := <-c:
		fmt.Println("ignored signal delivered (wrong):", got)
	case <-time.After(100 * time.Millisecond):
		fmt.Println("ignored SIGUSR1 not delivered")
	}
	signal.Stop(c)
	// tgkill to a thread of its own: the runtime's raise path.
	signal.Notify(c, syscall.SIGUSR2)
	syscall.Tgkill(os.Getpid(), syscall.Gettid(), syscall.SIGUSR2)
	fmt.Println("received", <-c)
	fmt.Println("done")
}
