package node

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// readFilesPrologue defines the two ways the read script frames a file.
//
// k INDEX PATH checks a path with the shell's builtins alone and prints
//
//	haadm-file INDEX missing
//
// or, for a regular file left to tar,
//
//	haadm-file INDEX tar
//
// The script then prints "haadm-tar COUNT" and execs GNU tar on those files,
// in order, so the whole read costs one process however many files there are.
// Forking stat and cat for each file took half a second for a node's twenty
// files on a loaded 2-core host, and status waits for the slowest node's read.
//
// Without GNU tar (busybox's lacks the flags), r INDEX PATH frames each file
// itself:
//
//	haadm-file INDEX missing
//
// or
//
//	haadm-file INDEX present MODE UID GID SIZE
//	<SIZE bytes>
//	haadm-end INDEX
//
// stat and cat both work on one open descriptor, so a file replaced by a
// rename in between cannot pair one file's size with another's content; a
// file changed in place shows up as a missing or misplaced trailer. tar
// reads each file through one descriptor too, and fails ("file changed as
// we read it", exit 1) when it changes under it, renamed over included:
// ReadFiles then reads once more.
//
// Both stop the script for anything that exists but is not a regular file.
const readFilesPrologue = `set -e
trap 'exit 1' HUP INT TERM PIPE
c() {
	if [ -d "$1" ]; then printf '%s: is a directory\n' "$1" >&2; exit 1; fi
	if [ ! -f "$1" ]; then printf '%s: not a regular file\n' "$1" >&2; exit 1; fi
}
k() {
	if [ ! -e "$2" ]; then printf 'haadm-file %s missing\n' "$1"; return 1; fi
	c "$2"
	printf 'haadm-file %s tar\n' "$1"
}
r() {
	if [ ! -e "$2" ]; then printf 'haadm-file %s missing\n' "$1"; return 0; fi
	c "$2"
	exec 3< "$2"
	s=$(stat -L -c '%a %u %g %s' /dev/fd/3)
	printf 'haadm-file %s present %s\n' "$1" "$s"
	cat <&3
	exec 3<&-
	printf '\nhaadm-end %s\n' "$1"
}
`

// readFilesTar is the tar a read uses: -P and --no-unquote keep the names
// as given (GNU tar would otherwise turn a \t in a name into a tab), so the
// parser can check each entry is the path it asked for; --hard-dereference
// keeps a second path to the same file from arriving as a link without
// content. The script unsets TAR_OPTIONS, and the format is fixed, so that
// no setting of the node's changes the stream.
const readFilesTar = "tar -c -f - --format=gnu -P --no-unquote --dereference --hard-dereference --no-recursion --"

func readFilesScript(paths []string) string {
	var b strings.Builder
	b.WriteString(readFilesPrologue)
	b.WriteString("case $(tar --version 2>/dev/null) in\n*'GNU tar'*)\n\tset --\n")
	for i, p := range paths {
		q := ShellQuote(p)
		fmt.Fprintf(&b, "\tif k %d %s; then set -- \"$@\" %s; fi\n", i, q, q)
	}
	fmt.Fprintf(&b, "\tif [ $# -eq 0 ]; then printf 'haadm-done %%s\\n' %d; exit 0; fi\n", len(paths))
	fmt.Fprintf(&b, "\tprintf 'haadm-tar %%s\\n' $#\n\tunset TAR_OPTIONS\n\texec %s \"$@\";;\nesac\n", readFilesTar)
	for i, p := range paths {
		fmt.Fprintf(&b, "r %d %s\n", i, ShellQuote(p))
	}
	fmt.Fprintf(&b, "printf 'haadm-done %%s\\n' %d\n", len(paths))
	return b.String()
}

// maxReadHeader bounds a header line, so that garbage without a newline is
// reported as such rather than scanned as one enormous header.
const maxReadHeader = 128

// parseReadFiles parses readFilesScript's output strictly. done is the
// number of paths whose entries are complete, which for a script that
// stopped early is the index of the path it stopped at. The returned Data
// of files framed by the script share out's memory but are capped, so
// appending to one cannot overwrite the next.
func parseReadFiles(out []byte, paths []string) (files map[string]File, done int, err error) {
	files = make(map[string]File, len(paths))
	pos := 0
	header := func() []string {
		i := bytes.IndexByte(out[pos:], '\n')
		if i < 0 || i > maxReadHeader {
			return nil
		}
		f := strings.Split(string(out[pos:pos+i]), " ")
		pos += i + 1
		return f
	}
	bad := func(i int, what string) (map[string]File, int, error) {
		return nil, i, fmt.Errorf("reading %s: malformed output of the read script at byte %d: %s", paths[i], pos, what)
	}
	var inTar []int // indexes of the paths the archive holds, in order
	framed := false // the script framed a file itself: no archive follows
	for i, p := range paths {
		idx := strconv.Itoa(i)
		start := pos
		h := header()
		switch {
		case h == nil:
			return bad(i, "no header line")
		case len(h) == 3 && h[0] == "haadm-file" && h[1] == idx && h[2] == "missing":
			continue
		case len(h) == 3 && h[0] == "haadm-file" && h[1] == idx && h[2] == "tar" && !framed:
			inTar = append(inTar, i)
			continue
		case len(h) != 7 || h[0] != "haadm-file" || h[1] != idx || h[2] != "present" || len(inTar) > 0:
			pos = start
			return bad(i, "unexpected header")
		}
		framed = true
		mode, errMode := strconv.ParseUint(h[3], 8, 12)
		uid, errUID := strconv.ParseUint(h[4], 10, 31)
		gid, errGID := strconv.ParseUint(h[5], 10, 31)
		size, errSize := strconv.ParseUint(h[6], 10, 62)
		if errors.Join(errMode, errUID, errGID, errSize) != nil {
			pos = start
			return bad(i, fmt.Sprintf("unexpected header %q", strings.Join(h, " ")))
		}
		trailer := "\nhaadm-end " + idx + "\n"
		if uint64(len(out)-pos) < size+uint64(len(trailer)) {
			return bad(i, fmt.Sprintf("output ends within the %d bytes of content", size))
		}
		end := pos + int(size)
		if string(out[end:end+len(trailer)]) != trailer {
			return bad(i, fmt.Sprintf("no trailer after %d bytes of content (did the file change while being read?)", size))
		}
		files[p] = File{Path: p, Data: out[pos:end:end], Mode: fs.FileMode(mode).Perm(), UID: int(uid), GID: int(gid)}
		pos = end + len(trailer)
	}
	if len(inTar) == 0 {
		if rest := string(out[pos:]); rest != fmt.Sprintf("haadm-done %d\n", len(paths)) {
			return nil, len(paths), fmt.Errorf("reading files: malformed output of the read script at byte %d: %d bytes instead of the end marker", pos, len(rest))
		}
		return files, len(paths), nil
	}
	if h := header(); len(h) != 2 || h[0] != "haadm-tar" || h[1] != strconv.Itoa(len(inTar)) {
		return bad(inTar[0], "no tar marker")
	}
	done, err = readFilesArchive(out[pos:], paths, inTar, files)
	if err != nil {
		return nil, done, err
	}
	return files, len(paths), nil
}

// readFilesArchive reads the archive tar wrote for the paths inTar names
// into files. Its error names the first path the archive does not hold
// whole, and done is that path's index.
func readFilesArchive(archive []byte, paths []string, inTar []int, files map[string]File) (done int, err error) {
	r := bytes.NewReader(archive)
	tr := tar.NewReader(r)
	at := func() int { return len(archive) - r.Len() }
	end := 0 // of the last content read
	for _, i := range inTar {
		p := paths[i]
		bad := func(what string) (int, error) {
			return i, fmt.Errorf("reading %s: malformed archive from tar at byte %d: %s", p, at(), what)
		}
		h, err := tr.Next()
		switch {
		case err == io.EOF:
			return bad("the archive ends before it")
		case err != nil:
			return bad(err.Error())
		case h.Name != p:
			return bad(fmt.Sprintf("entry %q instead", h.Name))
		case h.Typeflag != tar.TypeReg:
			return bad(fmt.Sprintf("entry of type %q, not a regular file", h.Typeflag))
		case h.Size < 0 || h.Size > int64(r.Len()):
			return bad(fmt.Sprintf("entry of %d bytes", h.Size))
		case h.Uid < 0 || h.Gid < 0 || h.Uid > 1<<31-1 || h.Gid > 1<<31-1:
			return bad(fmt.Sprintf("owner %d:%d", h.Uid, h.Gid))
		}
		// tar.Reader reads no further than the header: here the content
		// starts.
		end = at() + int(h.Size)
		data := make([]byte, h.Size)
		if _, err := io.ReadFull(tr, data); err != nil {
			return bad(fmt.Sprintf("content: %v", err))
		}
		files[p] = File{Path: p, Data: data, Mode: fs.FileMode(h.Mode).Perm(), UID: h.Uid, GID: h.Gid}
	}
	// What follows the last content is its padding to a block, then the
	// end of the archive, two zero blocks, and tar's padding of its last
	// record, all zeros in whole blocks. tar.Reader would take a stream
	// cut anywhere in there for a whole one.
	const block = 512
	tail := archive[min((end+block-1)/block*block, len(archive)):]
	if len(tail) < 2*block || len(tail)%block != 0 || len(bytes.TrimLeft(tail, "\x00")) > 0 {
		return len(paths), fmt.Errorf("reading files: malformed archive from tar at byte %d: %d bytes after the last file, not the end of an archive (%d or more zero bytes in whole blocks)",
			len(archive)-len(tail), len(tail), 2*block)
	}
	return len(paths), nil
}
