package main

import (
	"errors"
	"fmt"
	"io"
)

// cleanupStack holds the Close of everything buildApp made so far. It is
// unwound in reverse, so a component is closed before what it was built
// on (the chat store after chat, the SFU after ingest).
type cleanupStack struct {
	entries []cleanupEntry
}

type cleanupEntry struct {
	name string
	c    io.Closer
}

func (s *cleanupStack) push(name string, c io.Closer) {
	s.entries = append(s.entries, cleanupEntry{name: name, c: c})
}

// unwind closes every entry, newest first, even when one fails, and
// empties the stack so a second unwind does nothing.
func (s *cleanupStack) unwind() error {
	var errs []error
	for i := len(s.entries) - 1; i >= 0; i-- {
		e := s.entries[i]
		if err := e.c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", e.name, err))
		}
	}
	s.entries = nil
	return errors.Join(errs...)
}
