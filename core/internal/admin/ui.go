package admin

import (
	"net/http"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// UIHandler serves the Admin UI's built files (ui/dist of the npm package
// @socket.io/admin-ui, fetched at build time) from dir under prefix. When dir holds no
// index.html, every request answers 404 with a hint on how to fetch the files, and the
// first one logs it.
func UIHandler(prefix, dir string, log hclog.Logger) http.Handler {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	var once sync.Once
	root := os.DirFS(dir)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if _, err := os.Stat(path.Join(dir, "index.html")); err != nil {
			once.Do(func() {
				log.Warn("admin UI files are absent; run `make admin-ui`", "dir", dir)
			})
			http.Error(w, "The Admin UI files are not installed: run `make admin-ui` (npm ci in web/admin-ui) or set admin.ui_dir.", http.StatusNotFound)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, prefix)
		name = strings.TrimPrefix(path.Clean("/"+name), "/")
		if name == "" {
			name = "index.html"
		}
		if fi, err := os.Stat(path.Join(dir, name)); err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		// The built file names carry content hashes except index.html: revalidate all
		// (Last-Modified) rather than cache blindly.
		w.Header().Set("Cache-Control", "public, max-age=0")
		http.ServeFileFS(w, r, root, name)
	})
}
