package signaling

import (
	"testing"

	"github.com/parleyhq/parley/signaling/proto"
)

// TestEveryTypeHasAHandler keeps the handler table and proto's registry
// in step: a registered type without a handler would panic on dispatch,
// a handler without a registered type could never run.
func TestEveryTypeHasAHandler(t *testing.T) {
	registered := map[string]bool{}
	for _, typ := range proto.ClientTypes() {
		registered[typ] = true
		if handlers[typ] == nil && typ != proto.TypeJoin {
			t.Errorf("%s is registered in proto but has no handler", typ)
		}
	}
	for typ := range handlers {
		if !registered[typ] {
			t.Errorf("handler for %s, which proto does not register", typ)
		}
	}
}
