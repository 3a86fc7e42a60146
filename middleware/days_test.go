package middleware_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the machine has

	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
)

type noClients struct{}

func (noClients) ClientByID(context.Context, string) (*models.APIClient, error) {
	return nil, models.ErrNotFound
}

// TestAcceptedDaysKept walks a clock across midnights, daylight-saving
// changes among them (Havana's skips midnight itself), forward in small
// steps and back in jumps, and checks that the days the check accepts,
// which it keeps between the instants where they change, are always those
// computed afresh.
func TestAcceptedDaysKept(t *testing.T) {
	for _, zone := range []string{"UTC", "America/New_York", "Asia/Kolkata", "America/Havana", "Australia/Lord_Howe"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, skew := range []time.Duration{0, time.Second, 5 * time.Minute, 3 * time.Hour, 12*time.Hour - time.Second, 12 * time.Hour} {
			var now time.Time
			sig := middleware.NewSignature(middleware.SignatureConfig{
				Clients: noClients{}, Location: loc, Skew: skew, Now: func() time.Time { return now },
			})
			sig.Require("userinfoindex")
			for _, day := range []string{"2026-01-01", "2026-03-08", "2026-04-05", "2026-10-04", "2026-11-01", "2026-11-30"} {
				midnight, err := time.ParseInLocation(time.DateOnly, day, loc)
				if err != nil {
					t.Fatal(err)
				}
				span := skew + 3*time.Minute
				step := max(span/500, 7*time.Second)
				for at := midnight.Add(-span); at.Before(midnight.Add(span)); at = at.Add(step) {
					for _, now = range []time.Time{at, at.Add(-span / 3), at} {
						got := slices.Sorted(maps.Keys(sig.Tokens("secret")))
						if want := slices.Sorted(slices.Values(middleware.AcceptedDays(now, loc, skew))); fmt.Sprint(got) != fmt.Sprint(want) {
							t.Fatalf("%s, skew %v, at %v: days %v, want %v", zone, skew, now.In(loc), got, want)
						}
					}
				}
			}
		}
	}
}
