// Package config loads Parley's configuration from defaults, a YAML file,
// PARLEY_* environment variables and command-line flags, in that order, into
// any struct whose fields carry yaml tags. It knows nothing of the
// components: cmd/parley composes their Config structs and hands the whole
// tree here, so a new component needs no change in this package.
package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// leaf is one settable key of the configuration tree, addressed by its
// dotted yaml path ("sfu.udp_port").
type leaf struct {
	path  string
	doc   string
	value reflect.Value
}

var durationType = reflect.TypeFor[time.Duration]() //nolint:gochecknoglobals // a constant the language cannot spell

// leaves lists every settable key below root (a pointer to a struct), in
// declaration order.
func leaves(root any) ([]leaf, error) {
	v := reflect.ValueOf(root)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: need a pointer to a struct, got %T", root)
	}
	var out []leaf
	if err := walk(v.Elem(), "", &out); err != nil {
		return nil, err
	}
	return out, nil
}

func walk(v reflect.Value, prefix string, out *[]leaf) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			if err := walk(fv, path, out); err != nil {
				return err
			}
			continue
		}
		if !supported(f.Type) {
			return fmt.Errorf("config: key %s has unsupported type %s", path, f.Type)
		}
		*out = append(*out, leaf{path: path, doc: f.Tag.Get("doc"), value: fv})
	}
	return nil
}

func supported(t reflect.Type) bool {
	if t == durationType {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	case reflect.Map:
		return t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String
	}
	return false
}
