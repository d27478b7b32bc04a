package admin_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/rtserver/rtserver/core/internal/browsertest"
	"github.com/rtserver/rtserver/core/internal/config"
)

// TestAdminUIInChromium logs in to the served official Admin UI in headless Chromium,
// finds a connected test client with its room, and disconnects it with the UI's button.
func TestAdminUIInChromium(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; the test client needs Node.js 18+")
	}
	dir := npmInstall(t)
	ctx := browsertest.New(t)
	ts := start(t, nil)

	// The test client: a real socket.io-client in the room "lobby".
	client := exec.Command(node, "client.mjs")
	client.Dir = dir
	client.Env = append(os.Environ(), "SERVER_URL="+ts.url, "JWT_SECRET="+testSecret, "ROOM=lobby")
	out, err := client.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	client.Stderr = testWriter{t}
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.Process.Kill()
		_ = client.Wait()
	})
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var id string
	select {
	case l := <-lines:
		if !strings.HasPrefix(l, "id ") {
			t.Fatalf("test client: %q", l)
		}
		id = strings.TrimPrefix(l, "id ")
	case <-time.After(30 * time.Second):
		t.Fatal("test client did not join its room")
	}

	ctx, cancel := browsertest.Timeout(ctx, 90*time.Second)
	defer cancel()
	// The UI's page links fonts and icons from CDNs: only the server under test is
	// reached.
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: []*network.BlockPattern{
		{URLPattern: "http://127.0.0.1:*/*", Block: false},
		{URLPattern: "*://*:*/*", Block: true},
	}}); err != nil {
		t.Fatal(err)
	}
	ui := ts.url + ts.cfg.Admin.UIPath
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			browsertest.Screenshot(t, ctx, "admin-ui-failed")
			if text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`)); err == nil {
				t.Logf("page text:\n%s", text)
			}
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("open the UI and point it at the server",
		chromedp.Navigate(ui),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`localStorage.setItem("server_url", %q)`, ts.url)),
		chromedp.Reload(),
		chromedp.WaitVisible(`.v-dialog input[type="password"]`),
	)
	step("log in",
		chromedp.SendKeys(`.v-dialog form > div:nth-child(2) input`, "admin"),
		chromedp.SendKeys(`.v-dialog input[type="password"]`, testPassword),
		chromedp.Click(`.v-dialog button[type="submit"]`),
		chromedp.Poll[chromedp.Void](`!document.querySelector('.v-dialog input[type="password"]') || document.querySelector('.v-dialog').offsetParent === null`),
	)
	step("see the client and its room on the Sockets page",
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/sockets/"`),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.body.innerText.includes(%q)`, id)),
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/rooms/"`),
		chromedp.Poll[chromedp.Void](`document.body.innerText.includes("lobby")`),
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/sockets/"`),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.body.innerText.includes(%q)`, id)),
	)
	browsertest.Screenshot(t, ctx, "admin-ui-sockets")
	step("disconnect it with the row's button",
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			const row = [...document.querySelectorAll("tbody tr")].find((r) => r.innerText.includes(%q));
			row.querySelector("button").click();
		})()`, id)),
	)
	select {
	case l := <-lines:
		if l != "disconnect io server disconnect" {
			t.Fatalf("test client: %q", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the test client was not disconnected")
	}
	// The row's click also opens the socket's details, which then show it disconnected.
	step("the UI shows the socket gone",
		chromedp.Poll[chromedp.Void](`document.body.innerText.includes("DISCONNECTED")`),
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/sockets/"`),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`location.hash === "#/sockets/" && ![...document.querySelectorAll("tbody tr")].some((r) => r.innerText.includes(%q))`, id)),
	)
	browsertest.Screenshot(t, ctx, "admin-ui-after-disconnect")
}

// The UI's files are served with a hint when absent, and never outside their folder.
func TestUIHandler(t *testing.T) {
	ts := start(t, func(c *config.Config) { c.Admin.UIDir = t.TempDir() })
	res, body := get(t, ts.url+"/admin-ui/")
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "make admin-ui") {
		t.Fatalf("absent UI: %d %q", res.StatusCode, body)
	}
	dir := nodeDir(t)
	if _, err := os.Stat(dir + "/node_modules/@socket.io/admin-ui/ui/dist/index.html"); err != nil {
		t.Skip("the UI build is not installed")
	}
	ts = start(t, nil)
	res, body = get(t, ts.url+"/admin-ui")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Socket.IO Admin UI") {
		t.Fatalf("index: %d", res.StatusCode)
	}
	// Served through webassets: revalidated by ETag.
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/admin-ui/", nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	if res.Header.Get("ETag") == "" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("index headers: %v", res.Header)
	}
	if res2, err := http.DefaultClient.Do(req); err != nil || res2.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: %v %v", res2, err)
	} else {
		res2.Body.Close()
	}
	for _, p := range []string{"/admin-ui/../go.mod", "/admin-ui/%2e%2e/package.json", "/admin-ui/nope.js"} {
		if res, _ := get(t, ts.url+p); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, res.StatusCode)
		}
	}
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}
