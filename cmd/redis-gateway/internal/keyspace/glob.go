package keyspace

// Match reports whether key matches the glob pattern as Redis's SCAN MATCH and KEYS
// match it, byte by byte: "*" any run of bytes (also "/"), "?" any one byte,
// "[abc]", "[^abc]" and "[a-z]" one byte of (or not of) a set, and "\x" the byte x
// itself. Unlike path.Match, "*" crosses "/", which Atlantis's "pr/owner/repo*"
// relies on. An empty pattern matches every key, as SCAN without MATCH does.
func Match(pattern, key string) bool {
	if pattern == "" {
		return true
	}
	// Iterative matching with one backtracking point, the last "*": on a mismatch
	// the star takes one more byte of key and matching resumes after it.
	p, k := 0, 0
	starP, starK := -1, 0
	for k < len(key) {
		if p < len(pattern) {
			if pattern[p] == '*' {
				starP, starK = p, k
				p++
				continue
			}
			if next, ok := matchOne(pattern, p, key[k]); ok {
				p, k = next, k+1
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starK++
		p, k = starP+1, starK
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchOne matches the pattern element at p (not "*") against byte c, and returns
// where the next element starts.
func matchOne(pattern string, p int, c byte) (next int, ok bool) {
	switch pattern[p] {
	case '?':
		return p + 1, true
	case '\\':
		if p+1 < len(pattern) {
			return p + 2, pattern[p+1] == c
		}
		return p + 1, c == '\\'
	case '[':
		return matchClass(pattern, p+1, c)
	}
	return p + 1, pattern[p] == c
}

// matchClass matches the set that starts after "[" at p against c, and returns
// where the pattern goes on after "]". As in Redis, a set without "]" runs to the
// end of the pattern.
func matchClass(pattern string, p int, c byte) (next int, ok bool) {
	negate := false
	if p < len(pattern) && pattern[p] == '^' {
		negate = true
		p++
	}
	matched := false
	for p < len(pattern) && pattern[p] != ']' {
		switch {
		case pattern[p] == '\\' && p+1 < len(pattern):
			p++
			matched = matched || pattern[p] == c
			p++
		case p+2 < len(pattern) && pattern[p+1] == '-':
			lo, hi := pattern[p], pattern[p+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			matched = matched || (c >= lo && c <= hi)
			p += 3
		default:
			matched = matched || pattern[p] == c
			p++
		}
	}
	if p < len(pattern) {
		p++ // the "]"
	}
	return p, matched != negate
}
