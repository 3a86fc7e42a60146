package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config says which S3-compatible bucket S3 stores files in.
type S3Config struct {
	// Endpoint is the server's host:port (no scheme). Required.
	Endpoint string
	// AccessKey and SecretKey sign the requests.
	AccessKey, SecretKey string
	// Bucket holds the files; it must exist. Required.
	Bucket string
	// Secure uses HTTPS. Optional. Default: false.
	Secure bool
	// Region is the bucket's region. Optional. Default: the server's.
	Region string
	// PartSize is the part of a multipart upload, which is what one Put
	// holds in memory at most. Optional. Default: 5 MiB, S3's smallest.
	PartSize uint64
}

// S3 stores files as objects of an S3-compatible bucket, through
// minio-go (a kept client, not a hand-written signer), one object per
// key. A Put of unknown length is a multipart upload, one PartSize
// buffer at a time; an Open streams the object.
type S3 struct {
	c        *minio.Client
	bucket   string
	partSize uint64
}

// NewS3 returns the S3 store cfg describes. It does not reach the server.
func NewS3(cfg S3Config) (*S3, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("filestore: S3Config.Endpoint and Bucket are required")
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.Secure,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("filestore: S3 client: %w", err)
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = 5 << 20
	}
	return &S3{c: c, bucket: cfg.Bucket, partSize: cfg.PartSize}, nil
}

// Client is the minio-go client, for a host that sets its bucket up.
func (s *S3) Client() *minio.Client { return s.c }

// Put implements Store. An error of r is returned as r gave it, however
// minio-go reports it, so that a caller can tell its own limit apart.
func (s *S3) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	rr := &readErr{r: r}
	info, err := s.c.PutObject(ctx, s.bucket, key, rr, -1, minio.PutObjectOptions{
		PartSize:    s.partSize,
		ContentType: "application/octet-stream",
	})
	if rr.err != nil {
		_ = s.Delete(context.WithoutCancel(ctx), key)
		return 0, fmt.Errorf("read file: %w", rr.err)
	}
	if err != nil {
		return 0, fmt.Errorf("store file in S3: %w", err)
	}
	return info.Size, nil
}

// readErr remembers the error its reader returned, other than EOF.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		e.err = err
	}
	return n, err
}

// Open implements Store. The object is read on a context without the
// request's end: the body is written after the handler returns.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	obj, err := s.c.GetObject(context.WithoutCancel(ctx), s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("open file in S3: %w", err)
	}
	if _, err := obj.Stat(); err != nil {
		_ = obj.Close()
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("open file in S3: %w", err)
	}
	return obj, nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	err := s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return fmt.Errorf("delete file in S3: %w", err)
	}
	return nil
}
