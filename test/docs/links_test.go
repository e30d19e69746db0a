package docs_test

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// TestDocumentationLinks fails on every relative link of README.md, docs/**/*.md and
// charts/**/README.md whose file does not exist or whose #fragment is no heading's
// anchor in the linked Markdown file. The documents cite each other's sections by
// anchor, and moving or renaming a section breaks those links silently: GitHub renders
// them, and a reader lands at the top of the page, or on a 404.
func TestDocumentationLinks(t *testing.T) {
	root := repoRoot(t)
	files, err := markdownFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d Markdown files under %s; expected README.md and docs/", len(files), root)
	}
	broken, checked, err := brokenLinks(root, files)
	if err != nil {
		t.Fatal(err)
	}
	// A parser that found no link would pass every document.
	if checked == 0 {
		t.Fatalf("found no link in %d Markdown files", len(files))
	}
	t.Logf("checked %d links in %d Markdown files", checked, len(files))
	if len(broken) > 0 {
		t.Errorf("%d broken links in the Markdown documentation (an anchor is GitHub's: "+
			"the heading lowercased, every character but letters, digits, spaces, '-' and '_' "+
			"removed, spaces made '-', '-1', '-2' appended to repeats):\n  %s",
			len(broken), strings.Join(broken, "\n  "))
	}
}

// TestGitHubAnchor pins the anchor rule to headings of this repository's documents
// and to the cases GitHub documents, since a wrong rule would pass broken links or
// fail good ones.
func TestGitHubAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"Issue 13, memory: steps 15–18":                                  "issue-13-memory-steps-1518",
		"Issue 13's targets, and why they sit where they do":             "issue-13s-targets-and-why-they-sit-where-they-do",
		"Scale: 10,000 held and 10,000 queued (`make bench-scale`)":      "scale-10000-held-and-10000-queued-make-bench-scale",
		"Issue 13, the grant's write: step 26":                           "issue-13-the-grants-write-step-26",
		"Against an existing cluster: USE_EXISTING_CLUSTER=true":         "against-an-existing-cluster-use_existing_clustertrue",
		"Keys of `enhanced_locking`":                                     "keys-of-enhanced_locking",
		"P99 ≤ 10× the serial write, 2 + 2 = 4 / 8":                      "p99--10-the-serial-write-2--2--4--8",
		"Größe und Ärger":                                                "größe-und-ärger",
		"See [the gateway](redis-gateway.md) and <code>bench</code>":     "see-the-gateway-and-bench",
		"Trailing hashes ##":                                             "trailing-hashes",
		"Already-hyphenated -- words":                                    "already-hyphenated----words",
		"Emoji 🚀 removed":                                                "emoji--removed",
		"Digits ٣ and letters ß count":                                   "digits-٣-and-letters-ß-count",
		"Quotes \"double\" and 'single', dots. Commas, colons: (parens)": "quotes-double-and-single-dots-commas-colons-parens",
	} {
		got := githubAnchor(headingText("## " + heading))
		if got != want {
			t.Errorf("githubAnchor(%q) = %q, want %q", heading, got, want)
		}
	}
}

// TestParseSkipsCode checks that what sits in fenced code blocks and code spans is
// neither a heading nor a link (shell comments start with '#', and examples show
// link syntax), and that repeated headings get GitHub's numbered anchors.
func TestParseSkipsCode(t *testing.T) {
	doc := parseMarkdown(strings.Join([]string{
		"# Title",                    // 1
		"",                           // 2
		"```sh",                      // 3
		"# not a heading",            // 4
		"see [x](fenced.md)",         // 5
		"```",                        // 6
		"  ~~~~",                     // 7
		"## nor this",                // 8
		"~~~",                        // 9
		"~~~~",                       // 10
		"Text `[y](span.md)` and",    // 11
		"[a link](real.md#part) and", // 12
		"`a span that goes",          // 13
		"on [z](span2.md)` then",     // 14
		"[wrapped",                   // 15
		"text](<wrapped one.md>).",   // 16
		"",                           // 17
		"## Repeat",                  // 18
		"## Repeat",                  // 19
		"## Repeat-1",                // 20
		"#not a heading either",      // 21
		"    # indented code, no heading",
	}, "\n"))
	wantAnchors := []string{"title", "repeat", "repeat-1", "repeat-1-1"}
	for _, a := range wantAnchors {
		if !doc.anchors[a] {
			t.Errorf("anchor %q missing; have %v", a, doc.anchors)
		}
	}
	if len(doc.anchors) != len(wantAnchors) {
		t.Errorf("anchors %v, want exactly %v", doc.anchors, wantAnchors)
	}
	want := []link{{line: 12, target: "real.md#part"}, {line: 16, target: "<wrapped one.md>"}}
	if !slices.Equal(doc.links, want) {
		t.Errorf("links %+v, want %+v", doc.links, want)
	}
}

// TestBrokenLinksReported runs the check on a small tree with one link of each kind,
// so that the check of the real documents is known to fail when a link breaks.
func TestBrokenLinksReported(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", "# Top\n\n[ok](docs/a.md) [ok](docs/a.md#section-one) [ok](/docs/a.md)\n"+
		"[bad](docs/missing.md) [bad](docs/a.md#section-two)\n")
	write("docs/a.md", "# A\n\n## Section one\n\n"+
		"[ok](#section-one) [ok](../README.md#top) [ok](b.md#moved-here) [ok](b.md)\n"+
		"[ok](https://example.com/x.md#nothing) [ok](mailto:a@example.com) [ok](code.go#L3)\n"+
		"[bad](#nope) [bad](../../outside.md) [bad](b.md#section-one)\n"+
		"[ok](b.md#gr%C3%BC%C3%9Fe) [bad](b.md#gruesse) [bad](%zz.md)\n")
	write("docs/b.md", "# B\n\n## Moved here\n\n## Grüße\n")
	write("docs/code.go", "package x\n")

	files, err := markdownFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"README.md", "docs/a.md", "docs/b.md"}; !slices.Equal(relAll(t, root, files), want) {
		t.Fatalf("markdownFiles = %v, want %v", relAll(t, root, files), want)
	}
	broken, checked, err := brokenLinks(root, files)
	if err != nil {
		t.Fatal(err)
	}
	if checked != 18 {
		t.Errorf("checked %d links, want 18", checked)
	}
	want := []string{
		"README.md:4: docs/missing.md: no such file",
		"README.md:4: docs/a.md#section-two: docs/a.md has no heading with the anchor #section-two",
		"docs/a.md:7: #nope: docs/a.md has no heading with the anchor #nope",
		"docs/a.md:7: ../../outside.md: points outside the repository",
		"docs/a.md:7: b.md#section-one: docs/b.md has no heading with the anchor #section-one (docs/a.md has)",
		"docs/a.md:8: b.md#gruesse: docs/b.md has no heading with the anchor #gruesse",
		"docs/a.md:8: %zz.md: invalid URL escape \"%zz\"",
	}
	if !slices.Equal(broken, want) {
		t.Errorf("broken links:\n  %s\nwant:\n  %s", strings.Join(broken, "\n  "), strings.Join(want, "\n  "))
	}
}

// repoRoot is the repository's top directory: go test runs this package in test/docs.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "README.md"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Fatalf("%s is not the repository's root: %v", root, err)
		}
	}
	return root
}

// markdownFiles lists the documents a reader follows links in: README.md, every .md
// file under docs/, and the README.md of every chart.
func markdownFiles(root string) ([]string, error) {
	var files []string
	if _, err := os.Stat(filepath.Join(root, "README.md")); err == nil {
		files = append(files, filepath.Join(root, "README.md"))
	}
	walk := func(dir string, keep func(name string) bool) error {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && keep(d.Name()) {
				files = append(files, p)
			}
			return nil
		})
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if err := walk("docs", func(name string) bool { return strings.HasSuffix(name, ".md") }); err != nil {
		return nil, err
	}
	if err := walk("charts", func(name string) bool { return name == "README.md" }); err != nil {
		return nil, err
	}
	return files, nil
}

// relAll gives files relative to root, with slashes, as the failure messages name them.
func relAll(t *testing.T, root string, files []string) []string {
	t.Helper()
	out := make([]string, 0, len(files))
	for _, f := range files {
		r, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, filepath.ToSlash(r))
	}
	return out
}

// link is an inline link's destination as written, and the line it is on.
type link struct {
	line   int
	target string
}

// document is what the check needs of a Markdown file: its headings' anchors and
// its inline links.
type document struct {
	anchors map[string]bool
	links   []link
}

// brokenLinks checks every link of files and returns one line per broken link, as
// "file:line: target: why", in file and line order, and how many links it checked.
// Linked Markdown files outside files are read too, so that a link into any document
// of the repository is checked.
func brokenLinks(root string, files []string) (broken []string, checked int, err error) {
	docs := map[string]*document{}
	load := func(path string) (*document, error) {
		if d, ok := docs[path]; ok {
			return d, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		d := parseMarkdown(string(b))
		docs[path] = &d
		return &d, nil
	}
	rel := func(p string) string {
		r, err := filepath.Rel(root, p)
		if err != nil {
			return p
		}
		return filepath.ToSlash(r)
	}
	for _, f := range files {
		if _, err := load(f); err != nil {
			return nil, 0, err
		}
	}
	for _, f := range files {
		d := docs[f]
		for _, l := range d.links {
			checked++
			why := checkLink(root, f, l.target, load)
			if why == "" {
				continue
			}
			if strings.HasSuffix(why, "has no heading with the anchor #"+fragment(l.target)) {
				// Say where the anchor is, which is where a moved section went.
				var has []string
				for _, g := range files {
					if docs[g].anchors[fragment(l.target)] {
						has = append(has, rel(g))
					}
				}
				if len(has) > 0 {
					why += " (" + strings.Join(has, ", ") + " has)"
				}
			}
			broken = append(broken, fmt.Sprintf("%s:%d: %s: %s", rel(f), l.line, l.target, why))
		}
	}
	return broken, checked, nil
}

// fragment is target's part after '#', unescaped as far as it can be.
func fragment(target string) string {
	_, frag, _ := strings.Cut(strings.Trim(target, "<>"), "#")
	if u, err := url.PathUnescape(frag); err == nil {
		return u
	}
	return frag
}

// schemeRE matches a URL with a scheme (https:, mailto:, ...), which is not this
// repository's to check.
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// checkLink returns why target, linked from the Markdown file from, is broken, or ""
// if it is not or is not a link within the repository; a target that cannot be read
// is broken too, with the error as the reason. A path starting with '/' is
// taken from the repository's root, as GitHub does in a repository's files. A
// fragment is checked against the headings of a Markdown target only: on other files
// GitHub's fragments are line numbers.
func checkLink(root, from, target string, load func(string) (*document, error)) string {
	t := target
	if strings.HasPrefix(t, "<") && strings.HasSuffix(t, ">") {
		t = t[1 : len(t)-1]
	}
	if schemeRE.MatchString(t) {
		return ""
	}
	p, frag, _ := strings.Cut(t, "#")
	p, _, _ = strings.Cut(p, "?")
	p, err := url.PathUnescape(p)
	if err != nil {
		return err.Error()
	}
	if frag, err = url.PathUnescape(frag); err != nil {
		return err.Error()
	}
	dest := from
	switch {
	case p == "":
	case strings.HasPrefix(p, "/"):
		dest = filepath.Join(root, filepath.FromSlash(p))
	default:
		dest = filepath.Join(filepath.Dir(from), filepath.FromSlash(p))
	}
	if r, err := filepath.Rel(root, dest); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "points outside the repository"
	}
	info, err := os.Stat(dest)
	if os.IsNotExist(err) {
		return "no such file"
	} else if err != nil {
		return err.Error()
	}
	if frag == "" || info.IsDir() || !strings.EqualFold(filepath.Ext(dest), ".md") {
		return ""
	}
	d, err := load(dest)
	if err != nil {
		return err.Error()
	}
	if d.anchors[frag] {
		return ""
	}
	r, _ := filepath.Rel(root, dest)
	return fmt.Sprintf("%s has no heading with the anchor #%s", filepath.ToSlash(r), frag)
}

// parseMarkdown collects the anchors of the ATX headings ("## Title") and the inline
// links ("[text](target)", "![alt](src)") of a Markdown text, skipping fenced code
// blocks and code spans, where neither is one. The documents here use no setext
// headings, reference links or indented code blocks, and those are not read.
func parseMarkdown(text string) document {
	d := document{anchors: map[string]bool{}}
	occurrences := map[string]int{}
	var block []string // the lines of the paragraph, list or table being read
	blockStart := 0    // its first line's number
	flush := func() {
		if len(block) > 0 {
			d.links = append(d.links, inlineLinks(strings.Join(block, "\n"), blockStart)...)
		}
		block = nil
	}
	var fenceChar byte
	fenceLen := 0 // 0: not in a fenced code block
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		n := i + 1
		if fenceLen > 0 {
			if closesFence(line, fenceChar, fenceLen) {
				fenceLen = 0
			}
			continue
		}
		if c, l, ok := opensFence(line); ok {
			flush()
			fenceChar, fenceLen = c, l
			continue
		}
		if h, ok := atxHeading(line); ok {
			flush()
			a := uniqueAnchor(githubAnchor(headingText(h)), occurrences)
			d.anchors[a] = true
			d.links = append(d.links, inlineLinks(h, n)...)
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if len(block) == 0 {
			blockStart = n
		}
		block = append(block, line)
	}
	flush()
	return d
}

// opensFence reports whether line opens a fenced code block, and with which character
// and how many of it. Any indentation is accepted, since a fence inside a list item
// is indented by the item's.
func opensFence(line string) (byte, int, bool) {
	s := strings.TrimLeft(line, " \t")
	if s == "" || (s[0] != '`' && s[0] != '~') {
		return 0, 0, false
	}
	c := s[0]
	n := len(s) - len(strings.TrimLeft(s, string(c)))
	if n < 3 || (c == '`' && strings.Contains(s[n:], "`")) {
		return 0, 0, false
	}
	return c, n, true
}

// closesFence reports whether line closes a fenced code block opened with n of c:
// at least as many of the same character, and nothing else.
func closesFence(line string, c byte, n int) bool {
	s := strings.TrimSpace(line)
	m := len(s) - len(strings.TrimLeft(s, string(c)))
	return m >= n && m == len(s)
}

// atxHeading returns the text of an ATX heading line ("## Title ##" gives "Title").
func atxHeading(line string) (string, bool) {
	s := strings.TrimLeft(line, " ")
	if len(line)-len(s) > 3 {
		return "", false
	}
	level := len(s) - len(strings.TrimLeft(s, "#"))
	if level == 0 || level > 6 {
		return "", false
	}
	rest := s[level:]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	if t := strings.TrimRight(rest, "#"); t == "" {
		rest = ""
	} else if len(t) < len(rest) && (strings.HasSuffix(t, " ") || strings.HasSuffix(t, "\t")) {
		rest = strings.TrimSpace(t)
	}
	return rest, true
}

var (
	// imageRE and linkRE match an inline image and link in a heading, whose anchor
	// GitHub takes from the rendered text: an image adds nothing, a link its text.
	imageRE = regexp.MustCompile(`!\[[^\]]*\]\([^)]*\)`)
	linkRE  = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	// tagRE matches an HTML tag, which adds nothing to the rendered text.
	tagRE = regexp.MustCompile(`</?[A-Za-z][^>]*>`)
)

// headingText is the text GitHub renders for a heading's source text, as far as
// these documents need: images and HTML tags dropped, links replaced by their text.
// Emphasis written with underscores (_word_) is not unwrapped; no heading uses it.
func headingText(h string) string {
	if s, ok := atxHeading(h); ok {
		h = s
	}
	h = imageRE.ReplaceAllString(h, "")
	h = linkRE.ReplaceAllString(h, "$1")
	return tagRE.ReplaceAllString(h, "")
}

// githubAnchor is GitHub's anchor for a heading's rendered text: lowercased, every
// character removed but letters (any script, with their combining marks), digits,
// spaces, hyphens and underscores, and each space replaced with a hyphen.
func githubAnchor(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// uniqueAnchor gives a repeated anchor GitHub's suffix: the second "x" is "x-1", the
// third "x-2", skipping any suffix a heading already has as its own anchor.
func uniqueAnchor(a string, occurrences map[string]int) string {
	u := a
	if _, seen := occurrences[a]; seen {
		for {
			occurrences[a]++
			u = fmt.Sprintf("%s-%d", a, occurrences[a])
			if _, taken := occurrences[u]; !taken {
				break
			}
		}
	}
	occurrences[u] = 0
	return u
}

// inlineLinks returns the destinations of the inline links in a block of Markdown
// whose first line is line first. Code spans are blanked first, keeping the line
// breaks, so that the links shown as code are not taken for links.
func inlineLinks(block string, first int) []link {
	s := blankCodeSpans(block)
	var links []link
	for i := 0; i+1 < len(s); i++ {
		if s[i] != ']' || s[i+1] != '(' {
			continue
		}
		j := i + 2
		for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n') {
			j++
		}
		start := j
		if j < len(s) && s[j] == '<' {
			end := strings.IndexAny(s[j+1:], ">\n")
			if end < 0 || s[j+1+end] != '>' {
				continue
			}
			j += end + 2
		} else {
			depth := 0
		scan:
			for ; j < len(s); j++ {
				switch s[j] {
				case '\\':
					j++
				case '(':
					depth++
				case ')':
					if depth == 0 {
						break scan
					}
					depth--
				case ' ', '\t', '\n':
					break scan
				}
			}
			j = min(j, len(s))
		}
		if j > start {
			links = append(links, link{line: first + strings.Count(s[:start], "\n"), target: s[start:j]})
		}
	}
	return links
}

// blankCodeSpans replaces every code span of s (a run of backticks up to the next run
// of as many) with spaces, keeping newlines; an unmatched run stays, as Markdown
// leaves it literal.
func blankCodeSpans(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); {
		switch {
		case b[i] == '\\' && i+1 < len(b):
			i += 2
		case b[i] == '`':
			n := runLen(b, i)
			end := -1
			for j := i + n; j < len(b); {
				if b[j] != '`' {
					j++
					continue
				}
				m := runLen(b, j)
				if m == n {
					end = j + m
					break
				}
				j += m
			}
			if end < 0 {
				i += n
				continue
			}
			for k := i; k < end; k++ {
				if b[k] != '\n' {
					b[k] = ' '
				}
			}
			i = end
		default:
			i++
		}
	}
	return string(b)
}

// runLen is the length of the run of backticks starting at b[i].
func runLen(b []byte, i int) int {
	n := 0
	for i+n < len(b) && b[i+n] == '`' {
		n++
	}
	return n
}
