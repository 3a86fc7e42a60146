package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fiberchat/fiberchat/client"
)

// sendFile is /send-file PATH: the file is uploaded (streamed, never read
// whole) and sent to the open conversation. Files are not end-to-end
// encrypted (API.md §15 covers text only), which --e2ee says.
func (s *chatSession) sendFile(ctx context.Context, path string) error {
	s.mu.Lock()
	to := s.open
	s.mu.Unlock()
	if to.uid == 0 && to.gid == 0 {
		s.out.printf("no conversation open: /open UID or /group open GID first (/help lists the commands)\n")
		return nil
	}
	if path == "" {
		s.out.printf("/send-file wants a path: /send-file PATH\n")
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		s.out.printf("cannot read %s: %v\n", path, err)
		return nil
	}
	defer f.Close()
	up, err := s.c.Upload(ctx, filepath.Base(path), f)
	if err != nil {
		return err
	}
	if to.gid != 0 {
		_, err = s.c.SendFileToGroup(ctx, to.gid, up, "")
	} else {
		_, err = s.c.SendFile(ctx, to.uid, up, "")
	}
	if err != nil {
		return err
	}
	note := ""
	if s.e2ee && to.uid != 0 {
		note = " (files are not end-to-end encrypted)"
	}
	s.out.printf("sent %s%s\n", describeFile(up), note)
	return nil
}

// describeFile is a file as the chat prints it: its name, size and kind.
func describeFile(f client.File) string {
	kind := "file"
	if f.ThumbURL != "" {
		kind = "image"
	}
	return fmt.Sprintf("📎 %s (%s, %s)", f.Name, kind, byteSize(f.Size))
}

// byteSize is n bytes in the largest unit that keeps it above 1.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// fileText is a file message's line: the file, then its caption.
func fileText(m client.Message) string {
	if m.File == nil {
		return "📎 (file deleted) " + m.Message
	}
	out := describeFile(*m.File)
	if m.Message != "" {
		out += " " + m.Message
	}
	return out
}
