package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type inner struct {
	Port    int               `yaml:"port" doc:"UDP port"`
	Hosts   []string          `yaml:"hosts"`
	Keys    map[string]string `yaml:"keys"`
	Timeout time.Duration     `yaml:"timeout"`
}

type testConfig struct {
	Dev   bool    `yaml:"dev"`
	Name  string  `yaml:"name"`
	Ratio float64 `yaml:"ratio"`
	Inner inner   `yaml:"inner"`
}

func defaults() testConfig {
	return testConfig{Name: "default", Inner: inner{Port: 7882, Timeout: time.Second}}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "parley.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, "name: fromfile\ninner:\n  port: 1000\n  timeout: 5s\n  hosts: [a, b]\n")
	cases := []struct {
		name  string
		args  []string
		env   []string
		check func(t *testing.T, c testConfig)
	}{
		{"defaults only", nil, nil, func(t *testing.T, c testConfig) {
			if c.Name != "default" || c.Dev || c.Inner.Port != 7882 || c.Inner.Timeout != time.Second || c.Inner.Hosts != nil || c.Inner.Keys != nil {
				t.Fatalf("got %+v", c)
			}
		}},
		{"file over defaults", []string{"--config", file}, nil, func(t *testing.T, c testConfig) {
			if c.Name != "fromfile" || c.Inner.Port != 1000 || c.Inner.Timeout != 5*time.Second || strings.Join(c.Inner.Hosts, ",") != "a,b" {
				t.Fatalf("got %+v", c)
			}
		}},
		{"env over file", []string{"--config", file}, []string{"PARLEY_INNER_PORT=2000", "HOME=/root"}, func(t *testing.T, c testConfig) {
			if c.Inner.Port != 2000 || c.Name != "fromfile" {
				t.Fatalf("got %+v", c)
			}
		}},
		{"flag over env", []string{"--config=" + file, "--inner.port", "3000"}, []string{"PARLEY_INNER_PORT=2000"}, func(t *testing.T, c testConfig) {
			if c.Inner.Port != 3000 {
				t.Fatalf("got %+v", c)
			}
		}},
		{"config from env", nil, []string{"PARLEY_CONFIG=" + file}, func(t *testing.T, c testConfig) {
			if c.Name != "fromfile" {
				t.Fatalf("got %+v", c)
			}
		}},
		{"lists maps bools floats", []string{"--dev", "--ratio=0.5", "--inner.keys=k1=s1,k2=s2", "--inner.hosts=x, y"}, nil, func(t *testing.T, c testConfig) {
			if !c.Dev || c.Ratio != 0.5 || c.Inner.Keys["k2"] != "s2" || len(c.Inner.Keys) != 2 || strings.Join(c.Inner.Hosts, "|") != "x|y" {
				t.Fatalf("got %+v", c)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults()
			if _, err := Load(&c, Sources{Args: tc.args, Environ: tc.env}); err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"unknown yaml key", []string{"--config", writeFile(t, "inner:\n  prot: 1\n")}, nil, "prot"},
		{"bad yaml value", []string{"--config", writeFile(t, "inner:\n  port: many\n")}, nil, "many"},
		{"unknown env", nil, []string{"PARLEY_INNER_PROT=1"}, "PARLEY_INNER_PROT"},
		{"bad env value", nil, []string{"PARLEY_INNER_TIMEOUT=soon"}, "inner.timeout"},
		{"unknown flag", []string{"--inner.prot=1"}, nil, "inner.prot"},
		{"bad flag value", []string{"--inner.port=x"}, nil, "inner.port"},
		{"bad map entry", []string{"--inner.keys=novalue"}, nil, "inner.keys"},
		{"missing file", []string{"--config", "/nonexistent/parley.yaml"}, nil, "nonexistent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults()
			_, err := Load(&c, Sources{Args: tc.args, Environ: tc.env})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestLoadRest(t *testing.T) {
	c := defaults()
	res, err := Load(&c, Sources{Args: []string{"--name", "x", "extra", "args"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Rest, " ") != "extra args" || c.Name != "x" {
		t.Fatalf("rest %v name %q", res.Rest, c.Name)
	}
}

func TestExampleRoundTrips(t *testing.T) {
	c := defaults()
	out, err := Example(&c, map[string]string{"name": "Display name"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "# UDP port") || !strings.Contains(out, "# Display name") {
		t.Fatalf("missing comments:\n%s", out)
	}
	var back testConfig
	dec := yaml.NewDecoder(strings.NewReader(out))
	dec.KnownFields(true)
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("example does not load back: %v\n%s", err, out)
	}
	if back.Inner.Port != 7882 || back.Inner.Timeout != time.Second || back.Name != "default" {
		t.Fatalf("round trip changed values: %+v", back)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("sfu.udp_port"); got != "PARLEY_SFU_UDP_PORT" {
		t.Fatal(got)
	}
}
