package proto

import (
	"os"
	"regexp"
	"testing"
)

// TestRegistryMatchesProtocolDoc ties the registry to docs/protocol.md:
// every message type the document shows (in an example's "type" or a
// section heading) is registered, and every registered type is named in
// the document.
func TestRegistryMatchesProtocolDoc(t *testing.T) {
	raw, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	registered := map[string]bool{}
	for _, typ := range ClientTypes() {
		registered[typ] = true
	}
	for _, typ := range ServerTypes() {
		registered[typ] = true
	}

	shown := map[string]bool{}
	for _, m := range regexp.MustCompile(`"type": *"([a-z_]+)"`).FindAllStringSubmatch(doc, -1) {
		shown[m[1]] = true
	}
	heading := regexp.MustCompile("(?m)^#{3,4} .*$")
	name := regexp.MustCompile("`([a-z_]+)`")
	for _, h := range heading.FindAllString(doc, -1) {
		for _, m := range name.FindAllStringSubmatch(h, -1) {
			shown[m[1]] = true
		}
	}
	if len(shown) < 30 {
		t.Fatalf("found only %d message types in docs/protocol.md; has its format changed?", len(shown))
	}
	for typ := range shown {
		if !registered[typ] {
			t.Errorf("docs/protocol.md shows message type %q, which is not registered", typ)
		}
	}
	for typ := range registered {
		if !regexp.MustCompile("`" + typ + "`|\"type\": *\"" + typ + "\"").MatchString(doc) {
			t.Errorf("registered message type %q is not in docs/protocol.md", typ)
		}
	}
}

// TestRegistryBodies checks that every body constructor gives a fresh
// value of a distinct pointer each call (bodies are decoded into and
// normalised in place, so sharing one would leak between requests).
func TestRegistryBodies(t *testing.T) {
	for _, typ := range ClientTypes() {
		spec, _ := Lookup(typ)
		if spec.New == nil {
			continue
		}
		if a, b := spec.New(), spec.New(); a == b {
			t.Errorf("%s: New returned the same body twice", typ)
		}
		if typ != TypeJoin && !spec.Has(NeedJoined) {
			t.Errorf("%s does not need a joined connection", typ)
		}
	}
	for _, typ := range ServerTypes() {
		if NewServerBody(typ) == nil {
			t.Errorf("server type %s has no body", typ)
		}
	}
}
