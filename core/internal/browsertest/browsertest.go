// Package browsertest starts headless Chromium for the tests that drive the served pages
// (the chat demo, the Admin UI) the way a user's browser does.
//
// A test that needs Chromium calls New. Where Chromium is not installed the test is
// skipped with the reason, unless REQUIRE_CHROMIUM=1 (CI installs Debian's chromium
// package and sets it), where it fails instead.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// candidates are the executable names Chromium is installed under; CHROMIUM names one
// explicitly.
var candidates = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Path returns the Chromium executable, skipping (or failing under REQUIRE_CHROMIUM=1) the
// test when there is none.
func Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "Chromium not found (looked for " +
		"chromium, chromium-browser, google-chrome): install Debian's chromium package " +
		"(apt-get install chromium; .ci/run does) or set CHROMIUM to its path"
	if os.Getenv("REQUIRE_CHROMIUM") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// New starts a headless Chromium with its own profile and returns a context for
// chromedp.Run and chromedp.Do (chromedp v0.23's generic actions); the browser is closed when the test ends. Each call is a new browser, so
// two calls are two users with separate storage.
func New(t testing.TB) context.Context {
	t.Helper()
	path := Path(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // tests run as root in CI containers, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	// Start the browser now so that a broken installation fails here, named as such.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("starting Chromium %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// Timeout bounds one step of a page test: long enough for a loaded CI machine, short
// enough that a page that never shows what it should fails the test with its name.
func Timeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// Screenshot saves a full-page PNG of the page as a test artifact: in $TEST_ARTIFACTS when
// set, else in <temp dir>/rtserver-artifacts, which outlives the test. It logs the path
// and returns it; failing to take one is logged, not fatal.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "rtserver-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 is a PNG; below it, a JPEG
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	t.Logf("screenshot saved: %s", path)
	return path
}
