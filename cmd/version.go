package cmd

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Stamped by `make build` and `make release` with -ldflags "-X
// github.com/haadm/haadm/cmd.version=...": -X can only set package
// variables, so these three are the exception to "no package globals".
// Builds without them (go install, go build) fall back to what the Go
// toolchain recorded (debug.ReadBuildInfo).
var (
	version   = ""
	commit    = ""
	buildDate = ""
)

// build is what `haadm version` prints.
type build struct {
	Version, Commit, Date, Go, Platform string
	Modified                            bool
}

func buildInfo() build {
	b := build{Version: version, Commit: commit, Date: buildDate, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version // go install github.com/haadm/haadm@v1.2.3
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				if b.Date == "" {
					b.Date = s.Value
				}
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	return b
}

func (b build) write(w io.Writer) {
	c := b.Commit
	if c == "" {
		c = "unknown"
	} else if b.Modified {
		c += " (modified)"
	}
	d := b.Date
	if d == "" {
		d = "unknown"
	}
	fmt.Fprintf(w, "haadm %s\n  commit:   %s\n  built:    %s\n  go:       %s\n  platform: %s\n", b.Version, c, d, b.Go, b.Platform)
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print haadm's version, commit, build date, Go version and platform",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			buildInfo().write(c.OutOrStdout())
			return nil
		},
	}
}
