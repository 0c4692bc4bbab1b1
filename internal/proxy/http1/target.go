package http1

import "net/url"

// SplitTarget returns the decoded path and raw query of a request target
// (origin form, absolute form or "*").
func SplitTarget(s string) (path, query string) {
	if len(s) > 0 && s[0] != '/' && s != "*" {
		// absolute form: scheme://authority/path?query
		if i := indexString(s, "://"); i >= 0 {
			s = s[i+3:]
			if j := indexAny(s, "/?"); j >= 0 {
				s = s[j:]
			} else {
				s = "/"
			}
		}
	}
	if i := indexString(s, "?"); i >= 0 {
		s, query = s[:i], s[i+1:]
	}
	if p, err := url.PathUnescape(s); err == nil {
		s = p
	}
	if s == "" {
		s = "/"
	}
	return s, query
}

func indexString(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func indexAny(s, chars string) int {
	for i := 0; i < len(s); i++ {
		for j := 0; j < len(chars); j++ {
			if s[i] == chars[j] {
				return i
			}
		}
	}
	return -1
}
