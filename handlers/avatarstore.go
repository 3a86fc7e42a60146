package handlers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/models"
)

// AvatarStore keeps the re-encoded avatar images the user group serves,
// by the random names it gives them. The module offers two: FileAvatars,
// a directory of this process, and DBAvatars, the database every instance
// reads (API.md §11); a host may give its own (object storage, say).
type AvatarStore interface {
	// PutAvatar stores data under name; names are never reused.
	PutAvatar(ctx context.Context, name, contentType string, data []byte) error
	// GetAvatar returns what PutAvatar stored under name, or an error
	// that is models.ErrNotFound (models.ErrNoAvatar, say), which is
	// answered as it is.
	GetAvatar(ctx context.Context, name string) (data []byte, contentType string, err error)
	// DeleteAvatar removes what PutAvatar stored under name, once a new
	// avatar replaced it; a name that is gone already is no error.
	DeleteAvatar(ctx context.Context, name string) error
}

// FileAvatars stores avatars as files in Dir, created when first needed.
type FileAvatars struct{ Dir string }

// PutAvatar implements AvatarStore. The file is written under a temporary
// name and renamed, so a reader never sees half of it.
func (f FileAvatars) PutAvatar(_ context.Context, name, _ string, data []byte) error {
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return fmt.Errorf("create upload dir: %w", err)
	}
	tmp, err := os.CreateTemp(f.Dir, ".upload-*")
	if err != nil {
		return fmt.Errorf("store avatar: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("store avatar: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store avatar: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("store avatar: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(f.Dir, name)); err != nil {
		return fmt.Errorf("store avatar: %w", err)
	}
	return nil
}

// GetAvatar implements AvatarStore; the content type follows from the
// name's extension.
func (f FileAvatars) GetAvatar(_ context.Context, name string) ([]byte, string, error) {
	data, err := os.ReadFile(filepath.Join(f.Dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", models.ErrNoAvatar
	}
	if err != nil {
		return nil, "", fmt.Errorf("read avatar: %w", err)
	}
	return data, avatarTypes[filepath.Ext(name)[1:]], nil
}

// DeleteAvatar implements AvatarStore.
func (f FileAvatars) DeleteAvatar(_ context.Context, name string) error {
	err := os.Remove(filepath.Join(f.Dir, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete avatar: %w", err)
	}
	return nil
}

// DBAvatars stores avatars in the module's database, so that every
// instance on it serves every avatar.
type DBAvatars struct {
	Store *models.Store
	// Now stamps created_at.
	Now func() int64
	// MaxBytes bounds a stored image, re-encoded (which can make a small
	// upload larger), so that no row grows past what the column holds
	// (16 MiB on MySQL); past it the upload is refused as too large.
	MaxBytes int
}

// PutAvatar implements AvatarStore.
func (d DBAvatars) PutAvatar(ctx context.Context, name, contentType string, data []byte) error {
	if len(data) > d.MaxBytes {
		return apierr.TooLarge("image too large once re-encoded")
	}
	if err := d.Store.PutAvatar(ctx, &models.Avatar{Name: name, ContentType: contentType, Data: data, CreatedAt: d.Now()}); err != nil {
		return fmt.Errorf("store avatar: %w", err)
	}
	return nil
}

// GetAvatar implements AvatarStore.
func (d DBAvatars) GetAvatar(ctx context.Context, name string) ([]byte, string, error) {
	a, err := d.Store.GetAvatar(ctx, name)
	if err != nil {
		return nil, "", err
	}
	return a.Data, a.ContentType, nil
}

// DeleteAvatar implements AvatarStore.
func (d DBAvatars) DeleteAvatar(ctx context.Context, name string) error {
	return d.Store.DeleteAvatar(ctx, name)
}
