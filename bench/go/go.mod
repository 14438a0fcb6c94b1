module spanheap.invalid/bench

go 1.19
