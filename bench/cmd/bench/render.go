package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/haadm/haadm/bench/report"
)

// renderMain is `bench render [-dir DIR]`: latest.md, latest.json and the
// plots drawn again from DIR/latest.json's runs, without a lab (after a
// change to the report or the plots). The availability plot needs every
// request of a promote, which latest.json does not keep: an
// availability.png already there is kept and linked.
func renderMain(args []string, log io.Writer) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	dir := fs.String("dir", "bench/results", "the results directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(*dir, "latest.json"))
	if err != nil {
		return fmt.Errorf("reading the results: %w", err)
	}
	var r report.Results
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(*dir, "latest.json"), err)
	}
	if r.RunsAsked == 0 {
		r.RunsAsked = r.Runs
	}
	b := &bench{cfg: config{out: *dir}, log: log, results: r}
	if _, err := os.Stat(filepath.Join(*dir, availabilityPNG)); err == nil {
		b.keepAvailability = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return b.write(true)
}
