package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
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

// ignored is skipReason's answer for files passed over silently: hidden ones
// (atomic-rename staging files usually are, and the private copies' folder) and
// editor or temp leftovers.
const ignored = "-"

// maxNameLen bounds a plugin's file name: it names the plugin in logs, metrics and
// the API.
const maxNameLen = 64

// skipReason says why a directory entry is not loaded as a plugin ("" when it is):
// a plugin is a regular executable file with an accepted name.
func skipReason(fi os.FileInfo) string {
	n := fi.Name()
	if strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") || strings.HasSuffix(n, ".tmp") {
		return ignored
	}
	switch m := fi.Mode(); {
	case m&os.ModeSymlink != 0:
		return "a symbolic link: only regular files are loaded (copy the binary in)"
	case m.IsDir():
		return "a directory"
	case !m.IsRegular():
		return "not a regular file"
	case !validName(n):
		return fmt.Sprintf("name not accepted: use at most %d letters, digits, '.', '_' and '-', starting with a letter or digit", maxNameLen)
	case m.Perm()&0o111 == 0:
		return "not executable (chmod +x to load it)"
	}
	return ""
}

// validName accepts names that are safe as they are in a log line, a metric label, a
// path and JSON.
func validName(n string) bool {
	if n == "" || len(n) > maxNameLen {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// displayName is n for an accepted name, else n escaped as by strconv.QuoteToASCII
// without the quotes: printable ASCII on one line, so a name cannot forge a log line.
func displayName(n string) string {
	if validName(n) {
		return n
	}
	q := strconv.QuoteToASCII(n)
	return q[1 : len(q)-1]
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
