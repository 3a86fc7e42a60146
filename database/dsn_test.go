package database

import "testing"

func TestWithInterpolation(t *testing.T) {
	for in, want := range map[string]string{
		"u:p@tcp(h:3306)/db":                         "u:p@tcp(h:3306)/db?interpolateParams=true",
		"u:p@tcp(h:3306)/db?parseTime=true":          "u:p@tcp(h:3306)/db?parseTime=true&interpolateParams=true",
		"u:p@tcp(h:3306)/db?interpolateParams=false": "u:p@tcp(h:3306)/db?interpolateParams=false",
	} {
		if got := withInterpolation(in); got != want {
			t.Errorf("withInterpolation(%q) = %q, want %q", in, got, want)
		}
	}
}
