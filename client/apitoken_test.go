package client

import (
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the machine has
)

// TestAPITokenKept walks a client's clock across midnights, daylight-saving
// changes among them (Havana's skips midnight itself), forward and back,
// and checks that the api_tokens it keeps for the day are always those
// computed afresh for the date of now, for more paths than it keeps.
func TestAPITokenKept(t *testing.T) {
	t.Parallel()
	for _, zone := range []string{"UTC", "America/New_York", "America/Havana", "Australia/Lord_Howe"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		var now time.Time
		c, err := New("http://chat.example", "demo", "secret", WithLocation(loc), WithClock(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		paths := []string{"/Message/Send", "/user/info"}
		for i := range maxSignedPaths + 8 {
			paths = append(paths, "/a/b/c"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		}
		for _, day := range []string{"2026-03-08", "2026-04-05", "2026-10-04", "2026-11-01", "2026-11-30"} {
			midnight, err := time.ParseInLocation(time.DateOnly, day, loc)
			if err != nil {
				t.Fatal(err)
			}
			for at := midnight.Add(-3 * time.Hour); at.Before(midnight.Add(3 * time.Hour)); at = at.Add(97 * time.Second) {
				for _, now = range []time.Time{at, at.Add(-time.Hour), at} {
					date := now.In(loc).Format(time.DateOnly)
					for _, p := range paths {
						if got, want := c.APIToken(p), Sign(p, date, "secret"); got != want {
							t.Fatalf("%s at %v: APIToken(%q) = %s, want %s (for %s)", zone, now.In(loc), p, got, want, date)
						}
					}
				}
			}
		}
	}
}
