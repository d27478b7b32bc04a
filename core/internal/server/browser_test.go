package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtserver/rtserver/core/internal/browsertest"
	"github.com/rtserver/rtserver/core/internal/config"
)

// page is one browser tab on the demo.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitFor polls a JavaScript condition until it holds, failing with what was awaited and
// the page's connection log.
func (p *page) waitFor(what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			logText, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.getElementById("log").innerText`))
			browsertest.Screenshot(p.t, p.ctx, "demo-fail-"+p.name)
			p.t.Fatalf("%s: %s not seen in 30s (err %v); page log:\n%s", p.name, what, err, logText)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitText waits for the element's text to contain s.
func (p *page) waitText(id, s string) {
	p.t.Helper()
	p.waitFor(id+" showing "+jsString(s),
		`document.getElementById(`+jsString(id)+`).innerText.includes(`+jsString(s)+`)`)
}

func (p *page) text(id string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.getElementById(`+jsString(id)+`).innerText`))
	if err != nil {
		p.t.Fatalf("%s: text of #%s: %v", p.name, id, err)
	}
	return s
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := browsertest.Timeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// openDemo loads the page at url in a new browser, logs in as user and joins room.
func openDemo(t *testing.T, url, user, room string) *page {
	t.Helper()
	p := &page{t: t, name: user, ctx: browsertest.New(t)}
	p.do(chromedp.Navigate(url), chromedp.WaitVisible("#login"))
	p.do(chromedp.SendKeys("#user", user), chromedp.Click("#login"))
	p.waitText("state", "connected as "+user)
	p.waitText("log", "registered as "+user)
	p.do(chromedp.SetValue("#room", room), chromedp.Click("#join"))
	p.waitText("rooms", room)
	return p
}

func (p *page) say(text string) {
	p.t.Helper()
	p.do(chromedp.SendKeys("#text", text), chromedp.Click("#send"))
}

// Two people chat on the demo page in real Chromium, through the chat example plugin:
// messages, typing and a pushed notification show. Then one page's network drops while
// the other keeps talking; when it comes back the page shows system:state_recovered and
// the messages it missed, replayed by recovery (it does not join or ask history again).
func TestBrowserDemoChatAndRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two Chromium browsers")
	}
	browsertest.Path(t)
	clientDist(t)
	plugins := t.TempDir()
	buildPlugin(t, "chat", plugins, "")
	e := startServer(t, func(c *config.Config) {
		demoConfig(c)
		c.Demo.TokensPerMinute = 100
		c.SocketIO.ClientDir = clientDist(t)
		c.Plugins.Dir = plugins
	})
	proxy := newCutProxy(t, e.srv.Addr().String())

	alice := openDemo(t, proxy.URL()+"/", "alice", "lobby")
	bob := openDemo(t, e.url+"/", "bob", "lobby")

	alice.say("hello from alice")
	bob.waitText("messages", "hello from alice")
	alice.waitText("messages", "hello from alice")

	bob.do(chromedp.SendKeys("#text", "hi"))
	alice.waitText("typing", "bob is typing")
	bob.do(chromedp.Click("#send"))
	alice.waitText("messages", "hi")

	code, body, _ := e.api("POST", "/api/notification", map[string]any{
		"userId": "bob", "title": "Deploy", "message": "v2 is live", "type": "info"})
	if code != 200 {
		t.Fatalf("notification: %d %v", code, body)
	}
	bob.waitText("notifications", "Deploy: v2 is live")

	// Alice's network drops; the server sees her transport close.
	proxy.cut()
	alice.waitFor("the drop", `document.getElementById("state").innerText.startsWith("disconnected") ||
		document.getElementById("state").innerText.startsWith("reconnecting")`)
	alice.waitText("log", "reconnecting, attempt")
	bob.say("while you were away 1")
	bob.say("while you were away 2")
	bob.waitText("messages", "while you were away 2")
	if strings.Contains(alice.text("messages"), "while you were away") {
		t.Fatal("alice saw messages while her network was down")
	}

	proxy.restore()
	alice.waitText("log", "system:state_recovered for alice")
	alice.waitText("log", "reconnected, state recovered")
	alice.waitText("messages", "while you were away 1")
	alice.waitText("messages", "while you were away 2")
	if n := strings.Count(alice.text("log"), "joined lobby"); n != 1 {
		t.Errorf("alice joined lobby %d times; a recovered session keeps its rooms", n)
	}
	alice.waitText("state", "connected as alice")

	// And the room still works both ways after recovery.
	alice.say("back again")
	bob.waitText("messages", "back again")

	browsertest.Screenshot(t, alice.ctx, "demo-alice-recovered")
	browsertest.Screenshot(t, bob.ctx, "demo-bob")
}
