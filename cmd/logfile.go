package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/haadm/haadm/phases"
)

// keepLogs is how many of its log files haadm keeps in its state
// directory; older ones are removed when a run starts.
const keepLogs = 20

// logTimeLayout is the <time> of <command>-<time>.log.
const logTimeLayout = "20060102-150405"

// logDir is where haadm's detailed logs go: $XDG_STATE_HOME/haadm, else
// ~/.local/state/haadm (the XDG base directory specification's "state":
// logs and history, kept across runs but not worth a backup).
func logDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "haadm"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("log file: %w; set XDG_STATE_HOME or pass --log-file", err)
	}
	return filepath.Join(home, ".local", "state", "haadm"), nil
}

// openLog opens the run's detailed log: --log-file, or a new file
// <command>-<time>.log in logDir (0700; files 0600: logs hold diffs of
// cluster files), pruned to the newest keepLogs.
func openLog(g *globalFlags, name string) (*os.File, string, error) {
	path := g.logFile
	if path == "" {
		dir, err := logDir()
		if err != nil {
			return nil, "", err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, "", fmt.Errorf("log directory: %w (or pass --log-file)", err)
		}
		// MkdirAll leaves an existing directory's mode alone.
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, "", fmt.Errorf("log directory: %w (or pass --log-file)", err)
		}
		path = filepath.Join(dir, fmt.Sprintf("%s-%s.log", name, time.Now().Format(logTimeLayout)))
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("log file: %w (or pass --log-file)", err)
	}
	if g.logFile == "" {
		if err := pruneLogs(filepath.Dir(path), keepLogs); err != nil {
			fmt.Fprintf(f, "%s pruning old logs: %v\n", time.Now().Format(time.RFC3339Nano), err)
		}
	}
	return f, path, nil
}

// pruneLogs removes all but the newest keep of haadm's own log files in
// dir, newest by the time in their names; other files are left alone.
func pruneLogs(dir string, keep int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	// <command>-<time>.log, where a command is lower case words and dashes
	// ("promote", "phase-control-plane").
	own := regexp.MustCompile(`^[a-z][a-z0-9-]*-(\d{8}-\d{6})\.log$`)
	type logFile struct{ name, at string }
	var logs []logFile
	for _, e := range entries {
		if m := own.FindStringSubmatch(e.Name()); m != nil && e.Type().IsRegular() {
			logs = append(logs, logFile{e.Name(), m[1]})
		}
	}
	if len(logs) <= keep {
		return nil
	}
	slices.SortFunc(logs, func(a, b logFile) int {
		if c := strings.Compare(b.at, a.at); c != 0 {
			return c
		}
		return strings.Compare(b.name, a.name)
	})
	var errs []error
	for _, l := range logs[keep:] {
		if err := os.Remove(filepath.Join(dir, l.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// failed records err at the end of the log and names the log in it, so
// that every failed command says where its details are; nil stays nil.
// Commands that open a log return failed(logF, logPath, err).
func failed(logF *os.File, logPath string, err error) error {
	if err == nil {
		return nil
	}
	fmt.Fprintf(logF, "%s ERROR %v\n", time.Now().Format(time.RFC3339Nano), err)
	return fmt.Errorf("%w\n(details: %s)", err, logPath)
}

// newProgress is the console and log of one command: -v levels, and
// colour only on a terminal that wants it (NO_COLOR unset, TERM not dumb).
func newProgress(cmd *cobra.Command, g *globalFlags, logF io.Writer) *phases.Progress {
	console := cmd.ErrOrStderr()
	p := phases.NewProgress(console, logF)
	color := false
	if f, ok := console.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		color = os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	}
	p.Console(g.verbose, color)
	return p
}
