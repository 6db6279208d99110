package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Load reads and checks the file at path; see Decode.
func Load(path string) (*PromoteConfiguration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return Decode(path, b)
}

// Decode parses a PromoteConfiguration from YAML and checks it. Every
// problem, an unknown or repeated field as well as a bad value, is listed
// at once by its field path, each error prefixed with name.
func Decode(name string, data []byte) (*PromoteConfiguration, error) {
	// The version is checked first: a file of another version may well
	// have other fields, and listing them as unknown would mislead.
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(data, &meta); err != nil {
		return nil, fmt.Errorf("%s: want a YAML mapping with apiVersion: %s and kind: %s: %w", name, APIVersion, Kind, err)
	}
	if meta.APIVersion != APIVersion || meta.Kind != Kind {
		return nil, fmt.Errorf("%s: apiVersion %q, kind %q is not a haadm configuration this haadm reads: want apiVersion: %s, kind: %s (haadm config print writes one)", name, meta.APIVersion, meta.Kind, APIVersion, Kind)
	}
	// YAMLToJSONStrict refuses repeated keys, which plain YAML decoding
	// would resolve silently to the last one.
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := &PromoteConfiguration{}
	strict, err := kjson.UnmarshalStrict(js, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", name, typeProblem(js, err))
	}
	var problems []string
	for _, e := range strict {
		problems = append(problems, fieldProblem(e))
	}
	problems = append(problems, c.problems()...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: %d problem(s); nothing was changed:\n  - %s", name, len(problems), strings.Join(problems, "\n  - "))
	}
	return c, nil
}

// fieldProblem writes a strict decoding error, `unknown field "a.b"`, as
// "a.b: unknown field", the way the value problems read.
func fieldProblem(err error) string {
	var fe kjson.FieldError
	if !errors.As(err, &fe) {
		return err.Error()
	}
	what := strings.TrimSuffix(fe.Error(), " "+strconv.Quote(fe.FieldPath()))
	return fe.FieldPath() + ": " + what
}

// typeProblem writes a value of the wrong type, such as a port in quotes,
// as "loadBalancer.port: want a number, not a string". The strict decoder
// keeps its error type internal, so the standard one, which names the field
// path, decodes again to say which.
func typeProblem(js []byte, err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(json.Unmarshal(js, &PromoteConfiguration{}), &te) || te.Field == "" {
		return err.Error()
	}
	want := "a " + te.Type.String()
	switch te.Type.Kind() {
	case reflect.Slice:
		want = "a list"
	case reflect.Struct:
		want = "a mapping"
	case reflect.Int:
		want = "a whole number"
	case reflect.Bool:
		want = "true or false"
	}
	return fmt.Sprintf("%s: want %s, found %s", te.Field, want, te.Value)
}

// Marshal writes c as YAML that Decode reads back to the same c, its
// fields in the order the types declare them (apiVersion and kind first,
// each group together) rather than sorted by name.
func Marshal(c *PromoteConfiguration) ([]byte, error) {
	js, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	// JSON is YAML: read as a node tree it keeps encoding/json's order.
	var doc yaml3.Node
	if err := yaml3.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	plain(&doc)
	var b bytes.Buffer
	enc := yaml3.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// plain drops JSON's flow style and quotes; the encoder quotes again
// only the strings that would read back as something else.
func plain(n *yaml3.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plain(c)
	}
}
