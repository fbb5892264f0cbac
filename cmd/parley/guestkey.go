package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// guestKeyFile holds the key that signs dev-mode guest credentials, so a
// guest keeps their identity (and their chats) across server restarts.
const guestKeyFile = "dev-guest.key"

// loadGuestKey reads dataDir/dev-guest.key, creating it with 32 random
// bytes the first time.
func loadGuestKey(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, guestKeyFile)
	key, err := os.ReadFile(path)
	if err == nil && len(key) >= 32 {
		return key, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("guest key: %w", err)
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("guest key: %w", err)
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("guest key: %w", err)
	}
	return key, nil
}
