module spanheap-harness-go

go 1.19
