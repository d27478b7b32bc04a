package browsertest

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The helper itself: a page served on loopback is loaded, its script runs, and a
// screenshot is written.
func TestNewLoadsAPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>t</title><p id="p">wait</p>
<script>document.getElementById("p").textContent = "ran";</script>`))
	}))
	defer srv.Close()
	ctx := New(t)
	ctx, cancel := Timeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.WaitVisible("#p")); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text("#p"))
	if err != nil {
		t.Fatal(err)
	}
	if text != "ran" {
		t.Fatalf("page text %q, want %q", text, "ran")
	}
	if Screenshot(t, ctx, "browsertest-smoke") == "" {
		t.Fatal("no screenshot")
	}
}
