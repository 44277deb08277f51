// Command load calls main.Hot as fast as it can from -workers goroutines, -calls times in all,
// then prints {"calls": N, "cpu_ns": user+system CPU time of the process} on stderr.
// It is the traced program of scripts/bench-trace (a benchmark, not a fixture).
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"syscall"
)

type Item struct {
	ID   int
	Name string
}

type named interface{ Label() string }

func (i *Item) Label() string { return i.Name }

var sink int

//go:noinline
func Hot(key string, item *Item, n int, v named) int {
	return len(key) + item.ID + n
}

func main() {
	workers := flag.Int("workers", 8, "goroutines")
	calls := flag.Int("calls", 200000, "calls in all")
	flag.Parse()
	per := *calls / *workers
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			item := &Item{ID: w, Name: fmt.Sprintf("worker-%d", w)}
			key := fmt.Sprintf("key/%d", w)
			s := 0
			for i := 0; i < per; i++ {
				s += Hot(key, item, i, item)
			}
			mu.Lock()
			sink += s
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := ru.Utime.Nano() + ru.Stime.Nano()
	fmt.Fprintf(os.Stderr, "{\"calls\": %d, \"cpu_ns\": %d}\n", per**workers, cpu)
}
