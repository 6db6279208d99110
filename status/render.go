package status

import (
	"encoding/json"
	"fmt"
	"io"

	yaml "go.yaml.in/yaml/v3"
)

// Output formats of Render.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatYAML  = "yaml"
)

// Formats lists the formats Render accepts, for flag help.
func Formats() []string { return []string{FormatTable, FormatJSON, FormatYAML} }

// Exit codes of `haadm status`. Only a healthy HA control plane exits 0, so
// `haadm status && ...` is a safe guard in scripts.
const (
	ExitHA           = 0
	ExitDegraded     = 1
	ExitSingleMaster = 2
	// ExitNoAPI: the Kubernetes API could not be read, so the report is
	// partial (SSH and etcd only); it wins over the verdict.
	ExitNoAPI = 3
)

// ExitCode maps a report to the exit code of `haadm status`.
func ExitCode(r *Report) int {
	switch {
	case r == nil || !r.API.Reachable:
		return ExitNoAPI
	case r.Verdict == VerdictHA:
		return ExitHA
	case r.Verdict == VerdictSingleMaster:
		return ExitSingleMaster
	}
	return ExitDegraded
}

// Render writes r in format: "table" (for people), "json" (indented) or
// "yaml" (both with the field names of Report).
func Render(w io.Writer, r *Report, format string) error {
	switch format {
	case FormatTable, "":
		return renderTable(w, r)
	case FormatJSON:
		out, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(out, '\n'))
		return err
	case FormatYAML:
		// yaml.v3 rather than sigs.k8s.io/yaml: it keeps the fields in
		// struct order, verdict first, where the JSON detour sorts them.
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(r); err != nil {
			return err
		}
		return enc.Close()
	}
	return fmt.Errorf("unknown output format %q: use table, json or yaml", format)
}
