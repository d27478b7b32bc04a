package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// stamp identifies one version of a file cheaply, so the watcher hashes a binary
// only when it changed. An atomic rename always changes the inode.
type stamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func stampOf(fi os.FileInfo) stamp {
	s := stamp{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s
}

// candidate reports whether a directory entry looks like a plugin binary: a
// regular executable file, not hidden (atomic-rename staging files usually are)
// and not an editor or temp leftover.
func candidate(fi os.FileInfo) bool {
	n := fi.Name()
	if strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") || strings.HasSuffix(n, ".tmp") {
		return false
	}
	return fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// privateCopy copies the binary at src into dir/<sha256>/<name> while hashing it,
// and returns the copy's path and hash. The process runs from the copy, so the
// original may be replaced or deleted at any time (a binary overwritten in place
// while running fails with "text file busy"). Copies of the same content are
// shared.
func privateCopy(src, dir, name string) (path, sum string, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", "", fmt.Errorf("open plugin binary: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(dir, ".copy-*")
	if err != nil {
		return "", "", fmt.Errorf("copy plugin binary: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), in); err != nil {
		tmp.Close()
		return "", "", fmt.Errorf("copy plugin binary: %w", err)
	}
	if err := tmp.Chmod(0o700); err != nil {
		tmp.Close()
		return "", "", fmt.Errorf("copy plugin binary: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", "", fmt.Errorf("copy plugin binary: %w", err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	// The directory carries the hash; the file keeps the plugin's name, which
	// go-plugin uses to name the plugin's log lines.
	sub := filepath.Join(dir, sum)
	if err := os.MkdirAll(sub, 0o700); err != nil {
		return "", "", fmt.Errorf("copy plugin binary: %w", err)
	}
	path = filepath.Join(sub, name)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", "", fmt.Errorf("copy plugin binary: %w", err)
	}
	return path, sum, nil
}
