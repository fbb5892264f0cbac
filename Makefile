.PHONY: run test build
run:
	go run ./cmd/parley
test:
	./scripts/test
build:
	go build -o bin/parley ./cmd/parley
