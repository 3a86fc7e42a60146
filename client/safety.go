package client

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// safetyDomain starts what SafetyNumber digests, so that the digest
// cannot be mistaken for any other.
const safetyDomain = "fiberchat safety number v1\x00"

// SafetyNumber is the digest of the device keys ks (both users' keys,
// in any order): SHA-256 over safetyDomain and, for each key in order of
// uid and then device id, the uid in decimal, a NUL, the device id, a
// NUL and the 32 raw key bytes; shown as six groups of five digits, each
// group the big-endian integer of 5 digest bytes modulo 100000. Both
// users compute the same number from the same keys; a server that handed
// either of them a key of its own makes the numbers differ.
func SafetyNumber(ks []DeviceKey) string {
	sorted := slices.Clone(ks)
	slices.SortFunc(sorted, func(a, b DeviceKey) int {
		return cmp.Or(cmp.Compare(a.UID, b.UID), strings.Compare(a.DeviceID, b.DeviceID))
	})
	h := sha256.New()
	h.Write([]byte(safetyDomain))
	for _, k := range sorted {
		h.Write(strconv.AppendInt(nil, k.UID, 10))
		h.Write([]byte{0})
		h.Write([]byte(k.DeviceID))
		h.Write([]byte{0})
		h.Write(k.Key)
	}
	sum := h.Sum(nil)
	groups := make([]string, 6)
	for i := range groups {
		var b [8]byte
		copy(b[3:], sum[5*i:5*i+5])
		groups[i] = fmt.Sprintf("%05d", binary.BigEndian.Uint64(b[:])%100000)
	}
	return strings.Join(groups, " ")
}
