// Package promreg registers a component's Prometheus collectors. Every
// component makes its collectors whether or not it was given a
// Registerer (so its code never checks for nil) and registers them in
// one step, failing on the first collector the registry refuses.
package promreg

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers cs with reg in order; a nil reg registers nothing
// (the collectors still count, they are just not exported). The error
// names the component, "register <component> metrics: ...".
func Register(reg prometheus.Registerer, component string, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register %s metrics: %w", component, err)
		}
	}
	return nil
}
