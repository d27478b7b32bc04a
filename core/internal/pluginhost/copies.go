package pluginhost

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// cacheDirName is the folder inside the plugin folder that holds the hosts' private
// copies. Hidden, so the watcher ignores it.
const cacheDirName = ".rtserver-cache"

// copies is one host's folder of private copies, <plugins>/.rtserver-cache/<id>/. It is
// in use while <id>.lock is locked (flock): the kernel releases the lock however the
// process ends, even on SIGKILL, so the next host to start finds and removes the folders
// of hosts that no longer run, and never those of a host that does.
type copies struct {
	dir  string
	lock *os.File // nil for the temporary-folder fallback
}

// openCopies removes the folders of dead hosts, then makes this host's. When the plugin
// folder is not writable it falls back to a temporary folder, as a killed host then
// leaves it behind.
func openCopies(pluginDir string, log hclog.Logger) (*copies, error) {
	root := filepath.Join(pluginDir, cacheDirName)
	c, err := lockedCopies(root)
	if err == nil {
		sweepCopies(root, c, log)
		return c, nil
	}
	log.Warn("cannot keep private plugin copies in the plugin folder; using a temporary folder", "error", err)
	dir, terr := os.MkdirTemp("", "rtserver-plugins-")
	if terr != nil {
		return nil, fmt.Errorf("private copies folder: %w", terr)
	}
	return &copies{dir: dir}, nil
}

func lockedCopies(root string) (*copies, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	// Locked under a name the sweep ignores, then renamed: another host's sweep never
	// sees an unlocked lock file of ours.
	f, err := os.CreateTemp(root, ".lock-*")
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(root, id+".lock")); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	c := &copies{dir: filepath.Join(root, id), lock: f}
	if err := os.Mkdir(c.dir, 0o700); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// sweepCopies removes every folder in root whose lock no live process holds, and every
// folder left without a lock file (a sweep interrupted between the two removals).
func sweepCopies(root string, own *copies, log hclog.Logger) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	locks := map[string]bool{}
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".lock"); ok && !strings.HasPrefix(id, ".") {
			locks[id] = true
		}
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if id, ok := strings.CutSuffix(name, ".lock"); ok {
			if filepath.Join(root, id) == own.dir {
				continue
			}
			sweepLocked(root, id, log)
			continue
		}
		if e.IsDir() && !locks[name] && filepath.Join(root, name) != own.dir {
			if err := os.RemoveAll(filepath.Join(root, name)); err == nil {
				log.Info("removed private plugin copies of a stopped server", "dir", filepath.Join(root, name))
			}
		}
	}
}

func sweepLocked(root, id string, log hclog.Logger) {
	lockPath := filepath.Join(root, id+".lock")
	f, err := os.OpenFile(lockPath, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return // a live host holds it
	}
	dir := filepath.Join(root, id)
	if err := os.RemoveAll(dir); err != nil {
		log.Warn("removing private plugin copies of a stopped server", "dir", dir, "error", err)
		return
	}
	_ = os.Remove(lockPath)
	log.Info("removed private plugin copies of a stopped server", "dir", dir)
}

// close removes the folder, then gives up the lock.
func (c *copies) close() error {
	err := os.RemoveAll(c.dir)
	if c.lock != nil {
		if err == nil {
			_ = os.Remove(filepath.Join(filepath.Dir(c.dir), filepath.Base(c.dir)+".lock"))
		}
		c.lock.Close()
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
