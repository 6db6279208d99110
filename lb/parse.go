package lb

import (
	"fmt"
	"strings"
)

// ParseNginxBackends returns the backends ("host:port", in file order) of the
// kube_apiserver upstream of an nginx.conf, for status reports. It reads the
// directive structure rather than matching lines, so an operator's
// reformatting or extra server parameters do not hide a backend.
func ParseNginxBackends(conf []byte) ([]string, error) {
	up, err := findNginxUpstream(conf)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range up.children {
		if d.name == "server" {
			if len(d.args) == 0 {
				return nil, fmt.Errorf("nginx config: line %d: server without an address", d.line)
			}
			out = append(out, d.args[0])
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("nginx config: upstream %s has no server", upstreamName)
	}
	return out, nil
}

// ParseNginxListen returns the listen address ("host:port") of the stream
// server that proxies to the kube_apiserver upstream.
func ParseNginxListen(conf []byte) (string, error) {
	root, err := parseNginx(conf)
	if err != nil {
		return "", err
	}
	for _, stream := range root.all("stream") {
		for _, srv := range stream.all("server") {
			if !srv.block {
				continue
			}
			pass := srv.first("proxy_pass")
			if pass == nil || len(pass.args) != 1 || pass.args[0] != upstreamName {
				continue
			}
			listen := srv.first("listen")
			if listen == nil || len(listen.args) == 0 {
				return "", fmt.Errorf("nginx config: line %d: server proxying to %s has no listen", srv.line, upstreamName)
			}
			return listen.args[0], nil
		}
	}
	return "", fmt.Errorf("nginx config: no stream server proxies to %s", upstreamName)
}

func findNginxUpstream(conf []byte) (*directive, error) {
	root, err := parseNginx(conf)
	if err != nil {
		return nil, err
	}
	for _, stream := range root.all("stream") {
		for _, up := range stream.all("upstream") {
			if len(up.args) == 1 && up.args[0] == upstreamName {
				return up, nil
			}
		}
	}
	return nil, fmt.Errorf("nginx config: no stream upstream %s (not written by haadm?)", upstreamName)
}

// directive is one nginx directive; block directives have children.
type directive struct {
	name     string
	args     []string
	block    bool
	children []*directive
	line     int
}

func (d *directive) all(name string) []*directive {
	var out []*directive
	for _, c := range d.children {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

func (d *directive) first(name string) *directive {
	for _, c := range d.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// parseNginx builds the directive tree of an nginx configuration. It knows
// comments, quotes and blocks - enough for status reporting, not a full
// grammar (no variables or lua blocks).
func parseNginx(conf []byte) (*directive, error) {
	toks, err := tokenize(string(conf))
	if err != nil {
		return nil, err
	}
	root := &directive{block: true}
	stack := []*directive{root}
	var cur *directive
	for _, t := range toks {
		parent := stack[len(stack)-1]
		switch {
		case !t.quoted && t.text == ";":
			if cur == nil {
				return nil, fmt.Errorf("nginx config: line %d: unexpected ;", t.line)
			}
			parent.children = append(parent.children, cur)
			cur = nil
		case !t.quoted && t.text == "{":
			if cur == nil {
				return nil, fmt.Errorf("nginx config: line %d: block without a name", t.line)
			}
			cur.block = true
			parent.children = append(parent.children, cur)
			stack = append(stack, cur)
			cur = nil
		case !t.quoted && t.text == "}":
			if cur != nil {
				return nil, fmt.Errorf("nginx config: line %d: missing ; after %s", t.line, cur.name)
			}
			if len(stack) == 1 {
				return nil, fmt.Errorf("nginx config: line %d: unexpected }", t.line)
			}
			stack = stack[:len(stack)-1]
		case cur == nil:
			cur = &directive{name: t.text, line: t.line}
		default:
			cur.args = append(cur.args, t.text)
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("nginx config: line %d: missing ; after %s", cur.line, cur.name)
	}
	if len(stack) != 1 {
		return nil, fmt.Errorf("nginx config: unclosed block %s opened on line %d", stack[len(stack)-1].name, stack[len(stack)-1].line)
	}
	return root, nil
}

type token struct {
	text   string
	quoted bool
	line   int
}

func tokenize(s string) ([]token, error) {
	var toks []token
	line := 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			toks = append(toks, token{text: string(c), line: line})
			i++
		case c == '"' || c == '\'':
			start := line
			var sb strings.Builder
			i++
			for ; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				if s[i] == '\n' {
					line++
				}
				sb.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, fmt.Errorf("nginx config: line %d: unterminated quote", start)
			}
			i++
			toks = append(toks, token{text: sb.String(), quoted: true, line: start})
		default:
			j := i
			// Like nginx, # and quotes are special only where a token starts.
			for j < len(s) && !strings.ContainsRune(" \t\r\n;{}", rune(s[j])) {
				j++
			}
			toks = append(toks, token{text: s[i:j], line: line})
			i = j
		}
	}
	return toks, nil
}
