// httpd: the Go net/http twin of tests/guests/net/http_server.c, same protocol: GET /n answers "n=<counter> t=<unix ns>\n" (the counter goes up by one per /n served, each also printed to stdout as "n=<counter>"), GET /big?k=N answers N KiB of the same deterministic bytes, GET /quit answers "bye\n" and exits 0 after "done", anything else is 404. Listens on 0.0.0.0:PORT (tcp4). Run: httpd [PORT=8080].
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

const maxBigKiB = 64 * 1024

func bigByte(i uint64) byte {
	return byte(uint32(i*2654435761)>>13) ^ byte(i>>10)
}

func main() {
	port := "8080"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	var mu sync.Mutex
	var counter uint64
	quit := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/n":
			mu.Lock()
			counter++
			n := counter
			body := fmt.Sprintf("n=%d t=%d\n", n, time.Now().UnixNano())
			fmt.Fprintf(os.Stdout, "n=%d\n", n)
			mu.Unlock()
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write([]byte(body))
		case "/big":
			k, err := strconv.ParseUint(r.URL.Query().Get("k"), 10, 32)
			if err != nil || k > maxBigKiB {
				http.Error(w, "bad k", http.StatusBadRequest)
				return
			}
			body := make([]byte, k*1024)
			for i := range body {
				body[i] = bigByte(uint64(i))
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
		case "/quit":
			w.Header().Set("Connection", "close")
			w.Header().Set("Content-Length", "4")
			w.Write([]byte("bye\n"))
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			select {
			case <-quit:
			default:
				close(quit)
			}
		default:
			http.NotFound(w, r)
		}
	})
	ln, err := net.Listen("tcp4", "0.0.0.0:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on 0.0.0.0:%s\n", port)
	go func() {
		<-quit
		time.Sleep(100 * time.Millisecond) // let the answer to /quit go out
		fmt.Println("done")
		os.Exit(0)
	}()
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}
