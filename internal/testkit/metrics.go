package testkit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// MetricFamily gathers g and returns the family called name, or nil when
// g has none: a vector with no series yet is not gathered at all, and
// whether that means zero or a missing metric is the caller's call.
// (client_golang's testutil would pull a module that is not in go.mod.)
func MetricFamily(t testing.TB, g prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}
