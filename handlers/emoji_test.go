package handlers

import (
	"strings"
	"testing"
)

func TestOneEmoji(t *testing.T) {
	good := []string{
		"👍", "👍🏽", "❤️", "❤", "©️", "‼️", "↔️", "🫠", "🇫🇷", "1️⃣", "#⃣",
		"👨‍👩‍👧", "👩🏽‍💻", "🏳️‍🌈", "🧑‍🤝‍🧑",
		"🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", // Scotland
	}
	for _, s := range good {
		if !oneEmoji(s) {
			t.Errorf("oneEmoji(%q) = false, want true", s)
		}
	}
	bad := []string{
		"", "a", "ab", "1", "1\u20e3x", " ", "😀 ", "👍👍", "\u200d", "👍\u200d", "\u200d👍",
		"∑", "≠", "→", "°", "¬", "€", "ß", "中", "\u00a0",
		"👍🏽🏽", "😀\ufe0f\ufe0f", "😀" + strings.Repeat("\ufe0f", 8), "🏽", "\ufe0f",
		"🇫", "🇫🇷🇫", "👍🇫", "🏴\U000E0067", "😀\U000E0067\U000E007F",
		strings.Repeat("👍\u200d", 8) + "👍", // past 32 bytes
		"\xff",
	}
	for _, s := range bad {
		if oneEmoji(s) {
			t.Errorf("oneEmoji(%q) = true, want false", s)
		}
	}
}
