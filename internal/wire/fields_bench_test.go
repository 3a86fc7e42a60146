package wire

import (
	"encoding/json"
	"testing"
)

// sendBody is a Send's body as the SDK writes it.
var sendBody = []byte(`{"uid":10000001,"access_token":"k3j4h5g6f7d8s9a0q1w2e3r4t5y6u7i8","uid_to":10000065,"data":"message 12 of worker 7: the quick brown fox"}`)

// BenchmarkFields measures splitting a Send's body into its fields,
// against json.Unmarshal into a map, which it replaced.
func BenchmarkFields(b *testing.B) {
	b.Run("jsonFields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jsonFields(sendBody); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(sendBody, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
