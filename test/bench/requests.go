package main

import "strings"

// isWrite reports whether a request kind ("verb resource[/subresource]", as the
// operator's metrics name it: apicalls.Describe) changes state.
func isWrite(kind string) bool {
	verb, _, _ := strings.Cut(kind, " ")
	switch verb {
	case "create", "update", "patch", "delete":
		return true
	}
	return false
}

// requestDelta is what one phase cost in API requests.
type requestDelta struct {
	// Counts are the requests by kind sent during the phase.
	Counts map[string]int `json:"counts"`
	// Writes and Reads sum them (reads: get and list; watches are not counted).
	Writes int `json:"writes"`
	Reads  int `json:"reads"`
}
