package admin

import (
	"net/http"
	"path"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/internal/webassets"
)

// uiHint is the 404 hint when the UI's files are absent; the server runs without them.
const uiHint = "The Admin UI files are not installed: run `make admin-ui` (npm ci in web/admin-ui) or set admin.ui_dir."

// UIHandler serves the Admin UI's built files (ui/dist of the npm package
// @socket.io/admin-ui, fetched at build time) from dir under prefix, through a
// webassets.Set: ETag/304, gzip and brotli, and a 404 with uiHint (logged once) when a
// file is absent. Every file is revalidated (no-cache): index.html carries no content
// hash and must pick up a rebuilt UI.
func UIHandler(prefix, dir string, log hclog.Logger) http.Handler {
	set := webassets.New(webassets.Options{
		Dir:    dir,
		Hint:   uiHint,
		Logger: log,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Cleaning against the root keeps "..", encoded or not, inside dir; the Set
		// refuses dot-prefixed names as well.
		name := strings.TrimPrefix(r.URL.Path, prefix)
		name = strings.TrimPrefix(path.Clean("/"+name), "/")
		if name == "" {
			name = "index.html"
		}
		set.Serve(w, r, name)
	})
}
