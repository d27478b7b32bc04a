package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/internal/admin"
	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// newAdmin builds the /admin namespace's server when the configuration turns it on (nil
// otherwise). In a cluster every node reports as a server of its own.
func (s *Server) newAdmin(cfg *config.Config, log hclog.Logger) (*admin.Admin, error) {
	if !cfg.Admin.Active() {
		return nil, nil
	}
	serverID := ""
	if cfg.Cluster.Enabled() {
		host, _ := os.Hostname()
		serverID = fmt.Sprintf("%s#%d", host, os.Getpid())
	}
	a, err := admin.New(admin.Options{
		Username:     cfg.Admin.Username,
		PasswordHash: []byte(cfg.Admin.PasswordHash),
		ReadOnly:     cfg.Admin.ReadOnly,
		Production:   cfg.Admin.Mode == config.AdminProduction,
		ServerID:     serverID,
		IO:           s.io,
		ClientIP: func(so *socketio.Socket) string {
			return s.guard.clientIP(so.RemoteAddr(), so.Header())
		},
		Logger: log.Named("admin"),
	})
	if err != nil {
		return nil, err
	}
	s.io.Observe(a)
	return a, nil
}

// connectMiddleware sends the /admin namespace's CONNECTs to the admin login and every
// other to the client guard (JWT): neither accepts the other's credentials.
func (s *Server) connectMiddleware(so *socketio.Socket, raw json.RawMessage) error {
	if so.Namespace() == admin.Namespace {
		if s.admin == nil {
			return &socketio.ConnectError{Message: "Invalid namespace"}
		}
		return s.admin.Authenticate(so, raw)
	}
	return s.guard.middleware(so, raw)
}

// adminUI serves the Admin UI's files at admin.ui_path, or returns nil when not
// configured.
func (s *Server) adminUI() (string, http.Handler) {
	a := s.cfg.Admin
	if s.admin == nil || a.UIPath == "" {
		return "", nil
	}
	ui := admin.UIHandler(a.UIPath, a.UIDir, s.log.Named("admin"))
	bare := strings.TrimSuffix(a.UIPath, "/")
	return a.UIPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == bare {
			http.Redirect(w, r, a.UIPath, http.StatusMovedPermanently)
			return
		}
		ui.ServeHTTP(w, r)
	})
}
