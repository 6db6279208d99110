package node

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runReadScript runs the read script as a node's shell would, with PATH
// limited to the named tools, and parses what it prints.
func runReadScript(t *testing.T, paths []string, tools ...string) (string, map[string]File) {
	t.Helper()
	bin := t.TempDir()
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("no %s here: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("/bin/sh", "-c", readFilesScript(paths))
	cmd.Env = []string{"PATH=" + bin}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("read script with %v: %v: %s", tools, err, stderr.String())
	}
	files, done, err := parseReadFiles(out, paths)
	if err != nil || done != len(paths) {
		t.Fatalf("parsing the output with %v: done %d: %v", tools, done, err)
	}
	return string(out), files
}

// Both ways of reading give the same files: one tar for all where GNU tar
// is there, the script's own framing where it is not.
func TestReadFilesScriptWithAndWithoutTar(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	want := map[string][]byte{
		filepath.Join(dir, "a.conf"):           []byte("a: 1\n"),
		filepath.Join(dir, "empty"):            {},
		filepath.Join(dir, "binary"):           allBytes(),
		filepath.Join(dir, "big"):              pattern(100<<10+7, 3),
		filepath.Join(dir, "odd name's $x\nz"): []byte("no newline"),
		filepath.Join(dir, `back\tslash\n`):    []byte("GNU tar unquotes names unless told not to"),
	}
	for p, data := range want {
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "a.conf"), link); err != nil {
		t.Fatal(err)
	}
	want[link] = want[filepath.Join(dir, "a.conf")]
	paths := []string{filepath.Join(dir, "missing")}
	for p := range want {
		paths = append(paths, p)
	}
	paths = append(paths, filepath.Join(dir, "a.conf", "below"))

	withTar, tarFiles := runReadScript(t, paths, "tar", "stat", "cat")
	if !strings.Contains(withTar, "\nhaadm-tar 7\n") {
		t.Errorf("GNU tar is here but the script did not use it:\n%.300q", withTar)
	}
	withoutTar, shFiles := runReadScript(t, paths, "stat", "cat")
	if strings.Contains(withoutTar, "haadm-tar") {
		t.Errorf("without tar the script still used it:\n%.300q", withoutTar)
	}
	for how, files := range map[string]map[string]File{"tar": tarFiles, "sh": shFiles} {
		if len(files) != len(want) {
			t.Errorf("%s: %d files, want %d: %v", how, len(files), len(want), keys(files))
		}
		for p, data := range want {
			f, ok := files[p]
			if !ok || !bytes.Equal(f.Data, data) || f.Mode != 0o640 || f.UID != os.Getuid() || f.GID != os.Getgid() || f.Path != p {
				t.Errorf("%s: %q: present %v, %d bytes (want %d), mode %v, owner %s", how, p, ok, len(f.Data), len(data), f.Mode, f.Owner())
			}
		}
	}

	// Nothing to read but missing files: no tar at all.
	out, files := runReadScript(t, paths[:1], "tar", "stat", "cat")
	if len(files) != 0 || out != "haadm-file 0 missing\nhaadm-done 1\n" {
		t.Errorf("only a missing file: %q, %v", out, files)
	}
}

// The parser refuses an archive that is not exactly the files asked for.
func TestParseReadFilesArchive(t *testing.T) {
	t.Parallel()
	paths := []string{"/a", "/b", "/c"}
	type entry struct {
		name string
		typ  byte
		data string
	}
	// ends writes what follows the entries: the archive's end and padding.
	whole := func(tw *tar.Writer, b *bytes.Buffer) {
		tw.Close()
		b.Write(make([]byte, 1024)) // tar's record padding
	}
	streamEnding := func(marker string, entries []entry, tail string, ends func(*tar.Writer, *bytes.Buffer)) []byte {
		var b bytes.Buffer
		b.WriteString("haadm-file 0 tar\nhaadm-file 1 missing\nhaadm-file 2 tar\n" + marker)
		tw := tar.NewWriter(&b)
		for _, e := range entries {
			h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o600, Uid: 7, Gid: 8, Size: int64(len(e.data))}
			if e.typ != tar.TypeReg {
				h.Size, h.Linkname = 0, "/a"
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte(e.data))
		}
		ends(tw, &b)
		b.WriteString(tail)
		return b.Bytes()
	}
	stream := func(marker string, entries []entry, tail string) []byte {
		return streamEnding(marker, entries, tail, whole)
	}
	good := []entry{{"/a", tar.TypeReg, "x\ny"}, {"/c", tar.TypeReg, ""}}
	files, done, err := parseReadFiles(stream("haadm-tar 2\n", good, ""), paths)
	if err != nil || done != 3 || len(files) != 2 || string(files["/a"].Data) != "x\ny" || files["/a"].Mode != 0o600 || files["/a"].Owner() != "7:8" || files["/c"].Data == nil {
		t.Fatalf("good stream: %v %d %v", files, done, err)
	}
	for _, tc := range []struct {
		name string
		out  []byte
		done int
	}{
		{"no marker", stream("", good, ""), 0},
		{"wrong count", stream("haadm-tar 3\n", good, ""), 0},
		{"an entry missing", stream("haadm-tar 2\n", good[:1], ""), 2},
		{"wrong name", stream("haadm-tar 2\n", []entry{{"/a", tar.TypeReg, "x"}, {"/b", tar.TypeReg, "y"}}, ""), 2},
		{"a link", stream("haadm-tar 2\n", []entry{{"/a", tar.TypeReg, "x"}, {"/c", tar.TypeLink, ""}}, ""), 2},
		{"an extra entry", stream("haadm-tar 2\n", append(good, entry{"/d", tar.TypeReg, "z"}), ""), 3},
		{"bytes after the end", stream("haadm-tar 2\n", good, "motd"), 3},
		{"cut short", stream("haadm-tar 2\n", good, "")[:100], 0},
		{"cut after the last content", streamEnding("haadm-tar 2\n", good, "", func(tw *tar.Writer, _ *bytes.Buffer) { tw.Flush() }), 3},
		{"one zero block only", streamEnding("haadm-tar 2\n", good, "", func(tw *tar.Writer, b *bytes.Buffer) { tw.Flush(); b.Write(make([]byte, 512)) }), 3},
		{"padding not in whole blocks", stream("haadm-tar 2\n", good, "\x00\x00\x00"), 3},
		{"a framed file before the archive", []byte("haadm-file 0 present 600 0 0 1\nx\nhaadm-end 0\nhaadm-file 1 missing\nhaadm-file 2 tar\nhaadm-tar 1\n"), 2},
		{"a framed file after an archived one", []byte("haadm-file 0 tar\nhaadm-file 1 missing\nhaadm-file 2 present 600 0 0 1\nx\nhaadm-end 2\nhaadm-done 3\n"), 2},
	} {
		files, done, err := parseReadFiles(tc.out, paths)
		if err == nil || files != nil || done != tc.done {
			t.Errorf("%s: %v, done %d, %v", tc.name, files, done, err)
			continue
		}
		if done < len(paths) && !strings.Contains(err.Error(), paths[done]) {
			t.Errorf("%s: error does not name %s: %v", tc.name, paths[done], err)
		}
	}
}

// Only tar's own word that a file changed while read makes ReadFiles read
// again: not its other failures, not a cancelled session.
func TestChangedWhileRead(t *testing.T) {
	t.Parallel()
	changed := &CmdError{Node: "emei", ExitCode: 1, Stderr: []byte("tar: /etc/kubernetes/admin.conf: file changed as we read it\n")}
	if !changedWhileRead(fmt.Errorf("wrapped: %w", changed)) {
		t.Error("tar's exit 1 for a changed file is not retried")
	}
	for name, err := range map[string]error{
		"exit 2":    &CmdError{ExitCode: 2, Stderr: changed.Stderr},
		"cancelled": &CmdError{ExitCode: -1, Stderr: changed.Stderr, Err: context.Canceled},
		"other":     &CmdError{ExitCode: 1, Stderr: []byte("tar: /x: Cannot open: Permission denied\n")},
		"no error":  nil,
	} {
		if changedWhileRead(err) {
			t.Errorf("%s: retried", name)
		}
	}
}
