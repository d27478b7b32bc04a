package config

import (
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Admin configures the server side of the Socket.IO Admin UI: the /admin namespace and
// the UI's files.
type Admin struct {
	Enabled bool
	// Username and PasswordHash (bcrypt) are what the UI logs in with. A plain password
	// (the file's password, or $ADMIN_PASSWORD) is hashed when the file is read and not kept.
	Username     string
	PasswordHash string
	// GeneratedPassword is set only when development generated the password, so that the
	// start-up log can show it once.
	GeneratedPassword string
	Mode              string // development: every socket and event; production: figures only
	ReadOnly          bool
	UIPath            string // where the UI's files are served; "" turns that off
	UIDir             string // ui/dist of the npm package @socket.io/admin-ui
}

// Admin modes.
const (
	AdminDevelopment = "development"
	AdminProduction  = "production"
)

// Active reports whether the /admin namespace is served: enabled and with a password.
func (a Admin) Active() bool { return a.Enabled && a.PasswordHash != "" }

func defaultAdmin() Admin {
	return Admin{
		Enabled:  true,
		Username: "admin",
		Mode:     AdminDevelopment,
		UIPath:   "/admin-ui/",
		UIDir:    "web/admin-ui/node_modules/@socket.io/admin-ui/ui/dist",
	}
}

type rawAdmin struct {
	Enabled      *bool   `hcl:"enabled,optional"`
	Username     *string `hcl:"username,optional"`
	Password     *string `hcl:"password,optional"`
	PasswordHash *string `hcl:"password_hash,optional"`
	Mode         *string `hcl:"mode,optional"`
	ReadOnly     *bool   `hcl:"read_only,optional"`
	UIPath       *string `hcl:"ui_path,optional"`
	UIDir        *string `hcl:"ui_dir,optional"`
}

// admin applies the admin block; an unwritten password defaults to $ADMIN_PASSWORD.
func (d *decoder) admin(r *rawAdmin) {
	o := &d.c.Admin
	password := os.Getenv("ADMIN_PASSWORD")
	if r != nil {
		set(&o.Enabled, r.Enabled)
		set(&o.Username, r.Username)
		set(&password, r.Password)
		set(&o.PasswordHash, r.PasswordHash)
		set(&o.Mode, r.Mode)
		set(&o.ReadOnly, r.ReadOnly)
		set(&o.UIPath, r.UIPath)
		set(&o.UIDir, r.UIDir)
	}
	if o.PasswordHash == "" && password != "" && len(password) <= 72 {
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
		if err == nil {
			o.PasswordHash = string(h)
		}
	} else if len(password) > 72 {
		d.c.adminPasswordTooLong = true
	}
}

func (v *validator) admin() {
	a := v.c.Admin
	if v.c.adminPasswordTooLong {
		v.failAt("admin.password", []string{"admin"}, "the admin password must be at most 72 bytes (bcrypt's limit).")
	}
	if a.Username == "" || len(a.Username) > 128 {
		v.fail("admin.username", "username must be 1 to 128 bytes.")
	}
	if a.PasswordHash != "" {
		if _, err := bcrypt.Cost([]byte(a.PasswordHash)); err != nil {
			v.fail("admin.password_hash", "password_hash is not a bcrypt hash (like $2a$10$...); write password (or set ADMIN_PASSWORD) to have one made.")
		}
	}
	v.oneOf("admin.mode", "mode", []string{a.Mode}, []string{AdminDevelopment, AdminProduction})
	if a.UIPath != "" {
		switch {
		case !strings.HasPrefix(a.UIPath, "/") || !strings.HasSuffix(a.UIPath, "/") || len(a.UIPath) < 3:
			v.fail("admin.ui_path", "ui_path %q must start and end with \"/\", like \"/admin-ui/\" (or be \"\" to serve no UI).", a.UIPath)
		case strings.HasPrefix(a.UIPath, v.c.SocketIO.Path) || strings.HasPrefix(a.UIPath, "/api/"):
			v.fail("admin.ui_path", "ui_path %q overlaps the Socket.IO path or the API.", a.UIPath)
		}
	}
}

// generateAdminPassword fills, in development, a missing admin password.
func (c *Config) generateAdminPassword() bool {
	if !c.Admin.Enabled || c.Admin.PasswordHash != "" {
		return false
	}
	pw := GenerateSecret()[:24]
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return false
	}
	c.Admin.PasswordHash, c.Admin.GeneratedPassword = string(h), pw
	return true
}
