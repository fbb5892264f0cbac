package config

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Example renders cfg as YAML with each key's doc tag (or the entry in
// extraDocs, keyed by path) as a comment above it. It is what
// `parley config example` prints, so operators start from the real
// defaults rather than a hand-written sample that drifts.
func Example(cfg any, extraDocs map[string]string) (string, error) {
	ls, err := leaves(cfg)
	if err != nil {
		return "", err
	}
	docs := make(map[string]string, len(ls))
	for _, l := range ls {
		if l.doc != "" {
			docs[l.path] = l.doc
		}
	}
	for k, v := range extraDocs {
		docs[k] = v
	}
	var root yaml.Node
	if err := root.Encode(cfg); err != nil {
		return "", fmt.Errorf("example: %w", err)
	}
	annotate(&root, "", docs)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return "", fmt.Errorf("example: %w", err)
	}
	return buf.String(), nil
}

func annotate(n *yaml.Node, prefix string, docs map[string]string) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		if d, ok := docs[path]; ok {
			k.HeadComment = d
		}
		annotate(v, path, docs)
	}
}
