package lb

import (
	"fmt"
	"strings"
)

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
