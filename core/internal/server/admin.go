package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/internal/admin"
	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// newAdmin builds the /admin namespace's server when the configuration turns it on (nil
// otherwise). In a cluster every node reports as a server of its own (linkAdmin).
func (s *Server) newAdmin(cfg *config.Config, log hclog.Logger) (*admin.Admin, error) {
	if !cfg.Admin.Active() {
		return nil, nil
	}
	a, err := admin.New(admin.Options{
		Username:     cfg.Admin.Username,
		PasswordHash: []byte(cfg.Admin.PasswordHash),
		ReadOnly:     cfg.Admin.ReadOnly,
		Production:   cfg.Admin.Mode == config.AdminProduction,
		IO:           s.io,
		ClientIP: func(so *socketio.Socket) string {
			return s.guard.clientIP(so.RemoteAddr(), so.Handshake().Values(xffHeader))
		},
		Logger: log.Named("admin"),
	})
	if err != nil {
		return nil, err
	}
	s.io.Observe(a)
	return a, nil
}

// linkAdmin joins the admin to the other nodes when the node is in a cluster: each node
// reports to every node's admins, and their actions reach every node's sockets.
// The server id is the hostname and pid, as a clustered Node.js server's, followed by the
// node's id in the cluster: nodes in one process (tests, an embedding) stay apart.
func (s *Server) linkAdmin() {
	if s.admin != nil && s.cluster != nil {
		host, _ := os.Hostname()
		id := fmt.Sprintf("%s#%d#%s", host, os.Getpid(), s.cluster.UID())
		s.admin.Link(s.cluster.NewAdminLink(s.admin), id)
	}
}

// startAdmin has failed logins counted across the cluster and subscribes the admin to the
// other nodes' (after the cluster's adapter started, whose response channel carries the
// answers to its requests). A failure leaves the admins seeing this node only.
func (s *Server) startAdmin(ctx context.Context) {
	if s.admin == nil {
		return
	}
	if s.shared != nil {
		s.admin.ShareFailures(s.shared.Limiter(sharedLimitAdminLogin, s.admin.FailuresPerMinute(), time.Minute))
	}
	if err := s.admin.Start(ctx); err != nil {
		s.log.Error("admin: not linked to the other nodes", "error", err)
	}
}

// closeAdmin stops the admin's figures and its link, before the cluster's adapter closes.
func (s *Server) closeAdmin() {
	if s.admin != nil {
		_ = s.admin.Close()
	}
}

// sharedLimitAdminLogin names the cluster-wide limit of failed admin logins per IP (part of
// its Redis keys).
const sharedLimitAdminLogin = "admin_login"

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
