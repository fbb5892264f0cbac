package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable the loader reads.
const EnvPrefix = "PARLEY_"

// Sources says where Load reads from. Zero fields are skipped.
type Sources struct {
	// Args are command-line arguments (without the program name). Every
	// key is a flag named by its path, --sfu.udp_port=7000; --config names
	// the YAML file.
	Args []string
	// Environ is the process environment, as os.Environ returns it.
	Environ []string
	// FileRequired makes a missing --config/PARLEY_CONFIG file an error
	// instead of using defaults alone.
	FileRequired bool
}

// Result reports what Load found besides the values it set.
type Result struct {
	File string   // the YAML file read, "" if none
	Rest []string // positional arguments left after the flags
}

// Load fills dst (a pointer to a struct already holding defaults) from the
// YAML file named by --config or PARLEY_CONFIG, then PARLEY_* variables,
// then flags. Unknown YAML keys, unknown PARLEY_* variables and unknown
// flags are errors, so a typo never silently leaves a default in place.
func Load(dst any, src Sources) (Result, error) {
	ls, err := leaves(dst)
	if err != nil {
		return Result{}, err
	}
	byPath := make(map[string]leaf, len(ls))
	for _, l := range ls {
		byPath[l.path] = l
	}

	var file string
	values := map[string]string{}
	order := []string{}
	fs := flag.NewFlagSet("parley", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&file, "config", "", "YAML configuration file")
	for _, l := range ls {
		record := func(s string) error {
			if _, seen := values[l.path]; !seen {
				order = append(order, l.path)
			}
			values[l.path] = s
			return nil
		}
		if l.value.Kind() == reflect.Bool {
			fs.BoolFunc(l.path, l.doc, record)
		} else {
			fs.Func(l.path, l.doc, record)
		}
	}
	if err := fs.Parse(src.Args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Result{}, err
		}
		return Result{}, fmt.Errorf("flags: %w", err)
	}
	res := Result{Rest: fs.Args()}

	env := map[string]string{}
	for _, kv := range src.Environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	if file == "" {
		file = env[EnvPrefix+"CONFIG"]
	}
	delete(env, EnvPrefix+"CONFIG")

	if file != "" {
		if err := loadFile(dst, file); err != nil {
			return Result{}, err
		}
		res.File = file
	} else if src.FileRequired {
		return Result{}, errors.New("no configuration file: pass --config FILE or set PARLEY_CONFIG")
	}

	byEnv := make(map[string]leaf, len(ls))
	for _, l := range ls {
		byEnv[EnvName(l.path)] = l
	}
	envKeys := make([]string, 0, len(env))
	for k := range env {
		envKeys = append(envKeys, k)
	}
	sort.Strings(envKeys)
	for _, k := range envKeys {
		l, ok := byEnv[k]
		if !ok {
			return Result{}, fmt.Errorf("environment: %s is not a Parley setting", k)
		}
		if err := l.set(env[k]); err != nil {
			return Result{}, fmt.Errorf("environment %s: %w", k, err)
		}
	}
	for _, p := range order {
		if err := byPath[p].set(values[p]); err != nil {
			return Result{}, fmt.Errorf("flag --%w", err)
		}
	}
	return res, nil
}

// EnvName is the environment variable for a key path:
// "sfu.udp_port" -> "PARLEY_SFU_UDP_PORT".
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

func loadFile(dst any, name string) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", name, err)
	}
	return nil
}

// Keys lists every key path with its environment variable and current
// value, for `parley config keys` and documentation.
func Keys(cfg any) ([][3]string, error) {
	ls, err := leaves(cfg)
	if err != nil {
		return nil, err
	}
	out := make([][3]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, [3]string{l.path, EnvName(l.path), l.String()})
	}
	return out, nil
}
