package models

import (
	"context"
	"errors"
	"fmt"

	"github.com/fiberchat/fiberchat/apierr"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// File is an upload of one user (API.md §13): what clients are told of
// it, and the keys of its contents and thumbnail in the file store
// (filestore.Store). The contents are not here.
type File struct {
	ID  int64 `gorm:"primaryKey"`
	UID int64 `gorm:"column:uid;not null"`
	// BlobKey and ThumbKey name the contents and the thumbnail in the
	// file store; ThumbKey is "" for a file that is not an image.
	BlobKey   string `gorm:"column:blob_key;size:64;not null"`
	ThumbKey  string `gorm:"column:thumb_key;size:64;not null;default:''"`
	Name      string `gorm:"column:name;size:255;not null"`
	Mime      string `gorm:"column:mime;size:127;not null"`
	Size      int64  `gorm:"column:size;not null"`
	ThumbSize int64  `gorm:"column:thumb_size;not null;default:0"`
	// State is FileUploaded, FileSent or FileDoomed.
	State     int   `gorm:"column:state;not null;default:0"`
	CreatedAt int64 `gorm:"not null;autoCreateTime:false"`
}

// A file's states: uploaded and not yet taken by a message (swept after a
// day), taken by a message, and doomed (its message is gone; the sweep
// deletes its contents and row).
const (
	FileUploaded = 0
	FileSent     = 1
	FileDoomed   = 2
)

// IsImage reports whether the file is an image the module re-encoded,
// which has a thumbnail and is shown inline.
func (f *File) IsImage() bool { return f.ThumbKey != "" }

// FileChunk is a row of the database file store (filestore.DB), which
// reads and writes its table by hand; the model is here for the schema
// check.
type FileChunk struct {
	BlobKey string `gorm:"column:blob_key;primaryKey;size:64"`
	Seq     int    `gorm:"column:seq;primaryKey;autoIncrement:false"`
	Data    []byte `gorm:"column:data;not null"`
}

// Secret is a key every instance on the database shares (the file URLs'
// signing key), made by the first that needs it.
type Secret struct {
	Name  string `gorm:"column:name;primaryKey;size:32"`
	Value string `gorm:"column:value;size:128;not null"`
}

// ErrFileNotMine answers a Send whose file_id is not an upload of the
// sender's that no message has taken yet (API.md §13).
var ErrFileNotMine = apierr.Invalid("invalid file_id: not an upload of yours that is not sent yet")

// CreateFile stores f's row and fills in its id.
func (s *Store) CreateFile(ctx context.Context, f *File) error {
	db, done := s.with(ctx)
	defer done()
	if err := db.Create(f).Error; err != nil {
		return fmt.Errorf("store file: %w", err)
	}
	return nil
}

// FileByID returns the file with that id; ErrNotFound when there is
// none, or only a doomed one.
func (s *Store) FileByID(ctx context.Context, id int64) (*File, error) {
	db, done := s.with(ctx)
	defer done()
	var f File
	if err := db.Where("id = ? AND state <> ?", id, FileDoomed).Take(&f).Error; err != nil {
		return nil, notFound(err)
	}
	return &f, nil
}

// FilesByID returns the files with those ids that are not doomed, by id:
// one read for a page of records.
func (s *Store) FilesByID(ctx context.Context, ids []int64) (map[int64]File, error) {
	out := make(map[int64]File, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	db, done := s.with(ctx)
	defer done()
	var fs []File
	if err := db.Where("id IN ? AND state <> ?", ids, FileDoomed).Find(&fs).Error; err != nil {
		return nil, fmt.Errorf("read files: %w", err)
	}
	for _, f := range fs {
		out[f.ID] = f
	}
	return out, nil
}

// claimFile marks the upload m names as sent, in the transaction that
// stores m; ErrFileNotMine when it is not m's sender's, or is sent
// already. One conditional UPDATE, so two Sends racing for one upload
// cannot both take it; in m's own transaction, so the file is taken
// exactly when the message is stored, whatever becomes of an answer that
// comes too late or not at all.
func claimFile(tx *gorm.DB, m *Message) error {
	res := tx.Model(&File{}).Where("id = ? AND uid = ? AND state = ?", m.FileID, m.FromUID, FileUploaded).Update("state", FileSent)
	if res.Error != nil {
		return fmt.Errorf("claim file: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrFileNotMine
	}
	return nil
}

// FileBytes is what uid's files take, thumbnails included, for the quota.
func (s *Store) FileBytes(ctx context.Context, uid int64) (int64, error) {
	db, done := s.with(ctx)
	defer done()
	var n int64
	if err := db.Model(&File{}).Select("COALESCE(SUM(size + thumb_size), 0)").Where("uid = ?", uid).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("sum files: %w", err)
	}
	return n, nil
}

// DoomFilesOf marks the files of the messages ids carry as doomed, for
// the sweep (or the caller) to delete: what deleting or purging a message
// does to its file. It returns the doomed files.
func (s *Store) DoomFilesOf(ctx context.Context, messageIDs []int64) ([]File, error) {
	db, done := s.with(ctx)
	defer done()
	var fs []File
	err := db.Transaction(func(tx *gorm.DB) error {
		var ids []int64
		if err := tx.Model(&Message{}).Where("id IN ? AND file_id <> 0", messageIDs).Pluck("file_id", &ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id IN ?", ids).Find(&fs).Error; err != nil {
			return err
		}
		return tx.Model(&File{}).Where("id IN ?", ids).Update("state", FileDoomed).Error
	})
	if err != nil {
		return nil, fmt.Errorf("doom files: %w", err)
	}
	return fs, nil
}

// doomFiles marks files doomed inside a transaction that deletes their
// messages (the retention purge).
func doomFiles(tx *gorm.DB, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if err := tx.Model(&File{}).Where("id IN ?", ids).Update("state", FileDoomed).Error; err != nil {
		return fmt.Errorf("doom files: %w", err)
	}
	return nil
}

// FilesToSweep returns up to limit files whose contents are to go: the
// doomed ones, and uploads never sent that were made before cutoff,
// which it dooms first. A Send can take an upload until then (claimFile
// takes only an upload), and none after: its contents are not erased
// under a message that was sent with it.
func (s *Store) FilesToSweep(ctx context.Context, cutoff int64, limit int) ([]File, error) {
	db, done := s.with(ctx)
	defer done()
	var fs []File
	err := db.Transaction(func(tx *gorm.DB) error {
		var ids []int64
		err := tx.Model(&File{}).Where("state = ? OR (state = ? AND created_at < ?)", FileDoomed, FileUploaded, cutoff).
			Order("id").Limit(limit).Pluck("id", &ids).Error
		if err != nil || len(ids) == 0 {
			return err
		}
		err = tx.Model(&File{}).Where("id IN ? AND state = ? AND created_at < ?", ids, FileUploaded, cutoff).
			Update("state", FileDoomed).Error
		if err != nil {
			return err
		}
		// What a Send took meanwhile is not doomed, and stays.
		return tx.Where("id IN ? AND state = ?", ids, FileDoomed).Order("id").Find(&fs).Error
	})
	if err != nil {
		return nil, fmt.Errorf("read files to sweep: %w", err)
	}
	return fs, nil
}

// DoomedFile returns the doomed file with that id (FileByID hides
// those), for the caller to erase; ErrNotFound when there is none (not
// doomed, or erased already).
func (s *Store) DoomedFile(ctx context.Context, id int64) (*File, error) {
	db, done := s.with(ctx)
	defer done()
	var f File
	if err := db.Where("id = ? AND state = ?", id, FileDoomed).Take(&f).Error; err != nil {
		return nil, notFound(err)
	}
	return &f, nil
}

// DeleteFileRow removes a file's row once its contents are gone; only
// in the state it was found in, so an upload sent meanwhile stays.
func (s *Store) DeleteFileRow(ctx context.Context, f *File) error {
	db, done := s.with(ctx)
	defer done()
	if err := db.Where("id = ? AND state = ?", f.ID, f.State).Delete(&File{}).Error; err != nil {
		return fmt.Errorf("delete file: %w", err)
	}
	return nil
}

// Secret returns the shared secret name, storing newValue()'s value first
// if there is none yet: the first instance to ask makes it, and every
// other reads the same.
func (s *Store) Secret(ctx context.Context, name string, newValue func() (string, error)) (string, error) {
	db, done := s.with(ctx)
	defer done()
	var sec Secret
	err := db.Where("name = ?", name).Take(&sec).Error
	if err == nil {
		return sec.Value, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return "", fmt.Errorf("read secret: %w", err)
	}
	v, err := newValue()
	if err != nil {
		return "", err
	}
	if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&Secret{Name: name, Value: v}).Error; err != nil {
		return "", fmt.Errorf("store secret: %w", err)
	}
	if err := db.Where("name = ?", name).Take(&sec).Error; err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	return sec.Value, nil
}
