package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// set parses s into the leaf's value. Lists are comma-separated; maps are
// comma-separated key=value pairs. An empty string clears a list or map.
func (l leaf) set(s string) error {
	v := l.value
	if v.Type() == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%s: %q is not a duration (like 500ms, 30s, 1h)", l.path, s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", l.path, s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%s: %q is not a whole number", l.path, s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%s: %q is not a non-negative whole number", l.path, s)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", l.path, s)
		}
		v.SetFloat(f)
	case reflect.Slice:
		parts := splitList(s)
		sl := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			sl.Index(i).SetString(p)
		}
		v.Set(sl)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for _, p := range splitList(s) {
			k, val, ok := strings.Cut(p, "=")
			if !ok || k == "" {
				return fmt.Errorf("%s: %q is not key=value", l.path, p)
			}
			m.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), reflect.ValueOf(val).Convert(v.Type().Elem()))
		}
		v.Set(m)
	default:
		return fmt.Errorf("%s: unsupported type %s", l.path, v.Type())
	}
	return nil
}

// String renders the current value in the syntax set accepts. Map keys are
// listed but map values are not, because maps hold secrets (API keys).
func (l leaf) String() string {
	v := l.value
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = v.Index(i).String()
		}
		return strings.Join(parts, ",")
	case reflect.Map:
		return fmt.Sprintf("(%d entries)", v.Len())
	}
	return fmt.Sprint(v.Interface())
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
