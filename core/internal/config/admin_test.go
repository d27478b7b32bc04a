package config

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestAdminDefaults(t *testing.T) {
	clearEnv(t)
	t.Setenv("ADMIN_PASSWORD", "")
	c, err := Parse([]byte(`environment = "development"`), "dev.hcl")
	if err != nil {
		t.Fatal(err)
	}
	a := c.Admin
	if !a.Enabled || a.Username != "admin" || a.Mode != AdminDevelopment || a.ReadOnly || a.UIPath != "/admin-ui/" || a.Active() {
		t.Fatalf("defaults: %+v", a)
	}
	filled := c.GenerateMissingSecrets()
	if !strings.Contains(strings.Join(filled, ","), "admin.password") || !c.Admin.Active() {
		t.Fatalf("development generates a password: %v %+v", filled, c.Admin)
	}
	if bcrypt.CompareHashAndPassword([]byte(c.Admin.PasswordHash), []byte(c.Admin.GeneratedPassword)) != nil {
		t.Fatal("the generated password does not match its hash")
	}
}

func TestAdminPasswordFromEnvIsHashed(t *testing.T) {
	clearEnv(t)
	t.Setenv("ADMIN_PASSWORD", "s3cret-pass")
	t.Setenv("JWT_SECRET", "x")
	t.Setenv("API_KEY", "y")
	c, err := Parse([]byte("environment = \"production\"\nadmin {\n  mode = \"production\"\n  read_only = true\n}\n"), "prod.hcl")
	if err != nil {
		t.Fatal(err)
	}
	a := c.Admin
	if !a.Active() || !a.ReadOnly || a.Mode != AdminProduction || a.GeneratedPassword != "" {
		t.Fatalf("%+v", a)
	}
	if strings.Contains(a.PasswordHash, "s3cret") || bcrypt.CompareHashAndPassword([]byte(a.PasswordHash), []byte("s3cret-pass")) != nil {
		t.Fatal("the password is not kept as its bcrypt hash")
	}
}

func TestAdminOffOutsideDevelopmentWithoutPassword(t *testing.T) {
	clearEnv(t)
	t.Setenv("ADMIN_PASSWORD", "")
	t.Setenv("JWT_SECRET", "x")
	t.Setenv("API_KEY", "y")
	c, err := Parse([]byte(`environment = "production"`), "prod.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.GenerateMissingSecrets(); c.Admin.Active() {
		t.Fatal("the admin namespace is on in production without a password")
	}
}

func TestAdminMistakesPointAtTheLine(t *testing.T) {
	clearEnv(t)
	t.Setenv("ADMIN_PASSWORD", "")
	src := "admin {\n  mode = \"verbose\"\n  password_hash = \"plain\"\n  ui_path = \"admin\"\n  username = \"\"\n}\n"
	_, err := Parse([]byte(src), "admin.hcl")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"admin.hcl:2", "unknown mode \"verbose\"", "admin.hcl:3", "not a bcrypt hash", "admin.hcl:4", "ui_path", "admin.hcl:5", "username"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	_, err = Parse([]byte("admin {\n  password = \""+strings.Repeat("p", 73)+"\"\n}\n"), "long.hcl")
	if err == nil || !strings.Contains(err.Error(), "long.hcl:2") || !strings.Contains(err.Error(), "72 bytes") {
		t.Fatalf("long password: %v", err)
	}
}
