// Package walvfs registers with SQLite a VFS that is its unix VFS with one
// change: what SQLite writes to a WAL file is gathered in memory and
// written to the file in one system call, before SQLite reads the file,
// syncs it, truncates it, asks its size or closes it, and when a commit's
// last frame has been written.
//
// It exists for the message writer's COMMIT. SQLite writes each WAL frame
// with two pwrite(2) calls, its 24-byte header and then its page, so a
// batch of Sends that dirties 55 pages makes 110 system calls, which on
// this project's machines cost 2-3 µs each: about a sixth of the SQLite
// writer's time, on the goroutine every Send waits for. Gathered, the
// same bytes take one call.
//
// What reaches the file, and in what order before each sync, is what
// SQLite wrote, so the guarantees of synchronous=FULL stand: its COMMIT
// syncs the WAL after writing the commit's frames, and the sync writes
// what is gathered first. SQLite makes a commit's frames visible to other
// connections (in the wal-index) only after writing them, and this
// package writes them when the commit frame's page is written. It is
// meant for databases opened with synchronous=FULL, as internal/database
// opens them: at a lower level, the frame headers SQLite rewrites after a
// commit (when a transaction wrote a page to the WAL twice) would stay
// gathered until the next call on the file rather than reach it at once.
//
// The VFS is SQLite's own unix one in every other respect (locks, shared
// memory, the main database file and journals are untouched), and
// modernc.org/sqlite's transpiled library calls it as it calls any C VFS:
// through function pointers, with its structures in the library's own
// memory, which is not Go's heap.
package walvfs

import (
	"errors"
	"sync"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// Name is the VFS's name, for a DSN's vfs parameter.
const Name = "fiberchat-wal"

// bufSize bounds what one WAL file gathers: a commit larger than this is
// written in several calls. It is the most the unix VFS's xWrite takes
// in one call (it masks a write's length with 0x1ffff, since SQLite's
// own writes are never longer). A batch of Sends writes about 120 KB.
const bufSize = 0x1ffff

// walHeaderSize is SQLite's WAL frame header; its bytes 4-7 hold, for a
// commit's last frame, the database's size in pages, and zero otherwise.
const walHeaderSize = 24

// tail is what this VFS adds after the unix VFS's own file structure, in
// the library's memory: only integers, so the garbage collector has
// nothing to follow there.
type tail struct {
	methods uintptr // the unix VFS's methods for this file
	buf     uintptr // bufSize bytes, allocated at the first write
	off     int64   // the file offset of buf's first byte
	n       int64   // bytes gathered in buf
	commit  int64   // 1 when the last write was a commit frame's header
}

var (
	once       sync.Once
	errOnce    error
	unixSize   int32   // the unix VFS's szOsFile: where tail starts
	unixVfs    uintptr // the unix VFS
	walMethods uintptr // a copy of the unix VFS's methods, some replaced
	walOrigin  uintptr // the methods walMethods copies
)

// Register registers the VFS, once per process; later calls return the
// first one's result.
func Register() error {
	once.Do(func() { errOnce = register() })
	return errOnce
}

func register() error {
	tls := libc.NewTLS()
	defer tls.Close()
	unixVfs = sqlite3.Xsqlite3_vfs_find(tls, 0)
	if unixVfs == 0 {
		return errors.New("walvfs: SQLite has no default VFS")
	}
	unix := (*sqlite3.Tsqlite3_vfs)(at(unixVfs))
	unixSize = unix.FszOsFile

	p := sqlite3.Xsqlite3_malloc64(tls, uint64(unsafe.Sizeof(sqlite3.Tsqlite3_vfs{}))+uint64(len(Name))+1)
	if p == 0 {
		return errors.New("walvfs: out of memory")
	}
	v := (*sqlite3.Tsqlite3_vfs)(at(p))
	*v = *unix
	v.FpNext = 0
	v.FszOsFile = unixSize + int32(unsafe.Sizeof(tail{}))
	name := p + unsafe.Sizeof(sqlite3.Tsqlite3_vfs{})
	copy(unsafe.Slice((*byte)(at(name)), len(Name)+1), Name+"\x00")
	v.FzName = name
	v.FxOpen = funcPointer[openFunc](xOpen)
	if rc := sqlite3.Xsqlite3_vfs_register(tls, p, 0); rc != sqlite3.SQLITE_OK {
		return errors.New("walvfs: registering the VFS failed")
	}
	return nil
}

// xOpen opens a file with the unix VFS and, for a WAL file, gives it this
// package's methods.
func xOpen(tls *libc.TLS, _ uintptr, zName uintptr, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	unix := (*sqlite3.Tsqlite3_vfs)(at(unixVfs))
	rc := fn[openFunc](unix.FxOpen)(tls, unixVfs, zName, pFile, flags, pOutFlags)
	file := (*sqlite3.Tsqlite3_file)(at(pFile))
	if rc != sqlite3.SQLITE_OK || flags&sqlite3.SQLITE_OPEN_WAL == 0 || file.FpMethods == 0 {
		return rc
	}
	t := tailOf(pFile)
	*t = tail{methods: file.FpMethods}
	file.FpMethods = methodsFor(file.FpMethods)
	return rc
}

// methodsFor returns the WAL files' methods: those of the unix VFS
// (unix), with the ones that touch the file's bytes replaced. Every
// WAL file of the unix VFS on Linux has the same methods, so one copy
// serves all; a file given others keeps them, and is not gathered.
func methodsFor(unix uintptr) uintptr {
	methodsOnce.Do(func() {
		walOrigin = unix
		tls := libc.NewTLS()
		defer tls.Close()
		p := sqlite3.Xsqlite3_malloc64(tls, uint64(unsafe.Sizeof(sqlite3.Tsqlite3_io_methods{})))
		if p == 0 {
			return
		}
		m := (*sqlite3.Tsqlite3_io_methods)(at(p))
		*m = *(*sqlite3.Tsqlite3_io_methods)(at(unix))
		m.FxClose = funcPointer[closeFunc](xClose)
		m.FxRead = funcPointer[rwFunc](xRead)
		m.FxWrite = funcPointer[rwFunc](xWrite)
		m.FxTruncate = funcPointer[truncateFunc](xTruncate)
		m.FxSync = funcPointer[syncFunc](xSync)
		m.FxFileSize = funcPointer[sizeFunc](xFileSize)
		m.FxFileControl = funcPointer[controlFunc](xFileControl)
		walMethods = p
	})
	if walMethods == 0 || unix != walOrigin {
		// Out of memory, or methods of another kind: the file keeps the
		// unix VFS's, and its writes are not gathered.
		return unix
	}
	return walMethods
}

var methodsOnce sync.Once

func unixMethods(pFile uintptr) *sqlite3.Tsqlite3_io_methods {
	return (*sqlite3.Tsqlite3_io_methods)(at(tailOf(pFile).methods))
}

// xWrite gathers a write that continues what is gathered, and writes
// what is gathered first when it does not. The page that follows a
// commit frame's header ends the commit: what is gathered is written
// then.
func xWrite(tls *libc.TLS, pFile uintptr, pBuf uintptr, amt int32, off int64) int32 {
	t := tailOf(pFile)
	commitPage := t.commit != 0 && amt != walHeaderSize
	t.commit = 0
	if amt == walHeaderSize {
		if h := unsafe.Slice((*byte)(at(pBuf)), walHeaderSize); h[4]|h[5]|h[6]|h[7] != 0 {
			t.commit = 1
		}
	}
	if t.n > 0 && (off != t.off+t.n || t.n+int64(amt) > bufSize) {
		if rc := flush(tls, pFile, t); rc != sqlite3.SQLITE_OK {
			return rc
		}
	}
	if t.buf == 0 {
		t.buf = sqlite3.Xsqlite3_malloc64(tls, bufSize)
	}
	if t.buf == 0 || int64(amt) > bufSize {
		// Out of memory, or larger than any page: written as it comes.
		return fn[rwFunc](unixMethods(pFile).FxWrite)(tls, pFile, pBuf, amt, off)
	}
	if t.n == 0 {
		t.off = off
	}
	libc.Xmemcpy(tls, t.buf+uintptr(t.n), pBuf, uint64(amt))
	t.n += int64(amt)
	if commitPage {
		return flush(tls, pFile, t)
	}
	return sqlite3.SQLITE_OK
}

// flush writes what t gathered, in one call of the unix VFS's xWrite.
func flush(tls *libc.TLS, pFile uintptr, t *tail) int32 {
	if t.n == 0 {
		return sqlite3.SQLITE_OK
	}
	n, off := t.n, t.off
	t.n = 0
	return fn[rwFunc](unixMethods(pFile).FxWrite)(tls, pFile, t.buf, int32(n), off)
}

func xRead(tls *libc.TLS, pFile uintptr, pBuf uintptr, amt int32, off int64) int32 {
	if rc := flush(tls, pFile, tailOf(pFile)); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fn[rwFunc](unixMethods(pFile).FxRead)(tls, pFile, pBuf, amt, off)
}

func xTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	if rc := flush(tls, pFile, tailOf(pFile)); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fn[truncateFunc](unixMethods(pFile).FxTruncate)(tls, pFile, size)
}

func xSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	if rc := flush(tls, pFile, tailOf(pFile)); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fn[syncFunc](unixMethods(pFile).FxSync)(tls, pFile, flags)
}

func xFileSize(tls *libc.TLS, pFile uintptr, pSize uintptr) int32 {
	if rc := flush(tls, pFile, tailOf(pFile)); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fn[sizeFunc](unixMethods(pFile).FxFileSize)(tls, pFile, pSize)
}

func xFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	if rc := flush(tls, pFile, tailOf(pFile)); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fn[controlFunc](unixMethods(pFile).FxFileControl)(tls, pFile, op, pArg)
}

// xClose writes what is gathered, and closes the file even if that
// fails, as SQLite expects of xClose.
func xClose(tls *libc.TLS, pFile uintptr) int32 {
	t := tailOf(pFile)
	rc := flush(tls, pFile, t)
	methods := unixMethods(pFile)
	if t.buf != 0 {
		sqlite3.Xsqlite3_free(tls, t.buf)
	}
	*t = tail{}
	if rc2 := fn[closeFunc](methods.FxClose)(tls, pFile); rc == sqlite3.SQLITE_OK {
		rc = rc2
	}
	return rc
}

// The signatures of sqlite3_vfs.xOpen and of the sqlite3_io_methods
// this package calls, as the transpiled library declares them.
type (
	openFunc     = func(tls *libc.TLS, vfs, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32
	rwFunc       = func(tls *libc.TLS, pFile, pBuf uintptr, amt int32, off int64) int32
	truncateFunc = func(tls *libc.TLS, pFile uintptr, size int64) int32
	syncFunc     = func(tls *libc.TLS, pFile uintptr, flags int32) int32
	sizeFunc     = func(tls *libc.TLS, pFile, pSize uintptr) int32
	controlFunc  = func(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32
	closeFunc    = func(tls *libc.TLS, pFile uintptr) int32
)

// funcPointer is f as the library holds a function pointer: a Go func
// value, which for a top-level function points to its static, immovable
// closure record.
func funcPointer[F any](f F) uintptr { return *(*uintptr)(unsafe.Pointer(&f)) }

// fn is the function pointer p as a func value of type F, which must be
// the function's own type.
func fn[F any](p uintptr) F { return *(*F)(unsafe.Pointer(&p)) }

func tailOf(pFile uintptr) *tail { return (*tail)(at(pFile + uintptr(unixSize))) }

// at is the address p, which the library allocated, as a pointer. p is
// outside Go's heap, so the garbage collector neither moves nor frees
// what it points to.
func at(p uintptr) unsafe.Pointer { return unsafe.Add(nil, p) }
