package main

// The operator commands: push, broadcast, room, notify, status and plugins call a running
// server's HTTP API, with the API key and (where wanted) a request signature.
//
// Exit codes: 0 the server did it; 1 the server answered an error; 2 a usage error (flags,
// --data, configuration); 3 the server could not be reached.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/httpapi"
)

const (
	exitOK          = 0
	exitServerError = 1
	exitUsage       = 2
	exitUnreachable = 3

	defaultURL      = "http://127.0.0.1:3000"
	maxAnswerBytes  = 8 << 20
	defaultTimeout  = 10 * time.Second
	defaultConfigOp = "config.hcl"
)

// opSpec describes one operator command.
type opSpec struct {
	method, path string
	usage        string // the line after "usage: rtserver "
	about        string
}

var opSpecs = map[string]opSpec{
	"push": {"POST", "/api/push", "push --user ID --event NAME [--data JSON] [flags]",
		"Sends an event to every socket of a registered user (POST /api/push)."},
	"broadcast": {"POST", "/api/broadcast", "broadcast --event NAME [--data JSON] [flags]",
		"Sends an event to every connected socket (POST /api/broadcast)."},
	"room": {"POST", "/api/room", "room --room NAME --event NAME [--data JSON] [flags]",
		"Sends an event to every socket in a room (POST /api/room)."},
	"notify": {"POST", "/api/notification", "notify --user ID --title TEXT --message TEXT [--type info|warning|error] [flags]",
		"Sends a system:notification to a registered user (POST /api/notification)."},
	"status": {"GET", "/api/status", "status [flags]",
		"Shows the server's status: connections, rooms, uptime, memory (GET /api/status)."},
	"plugins": {"GET", "/api/plugins", "plugins [flags]",
		"Lists the plugins and their state (GET /api/plugins)."},
}

// opClient is what every operator command shares: where the server is and how to sign.
type opClient struct {
	name    string
	url     string
	key     string
	sign    string // "v1", "v2" or "none"
	json    bool
	timeout time.Duration
}

// usageError is a problem with the command line or the configuration: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// runOp runs the operator command name.
func runOp(name string, args []string, stdout, stderr io.Writer) int {
	spec := opSpecs[name]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, on stdout for --help and on stderr for a mistake
	urlFlag := fs.String("url", "", "server base URL (env RTSERVER_URL; default: from the configuration's api.listen or server host and port, else "+defaultURL+")")
	keyFlag := fs.String("key", "", "API key (env API_KEY; default: the secret of the configuration's \"default\" key)")
	cfgFlag := fs.String("config", "", "configuration file to read the URL, key and signing from (default: "+defaultConfigOp+" when present)")
	signFlag := fs.String("sign", "", "request signature: v1, v2 or none (default: v2 when the configuration requires signing, else none)")
	jsonFlag := fs.Bool("json", false, "print the server's JSON answer as is")
	timeout := fs.Duration("timeout", defaultTimeout, "how long to wait for the answer")
	var user, event, data, room, title, message, typ *string
	switch name {
	case "push", "notify":
		user = fs.String("user", "", "the userId to send to (required)")
	}
	switch name {
	case "push", "broadcast", "room":
		if name == "room" {
			room = fs.String("room", "", "the room to send to (required)")
		}
		event = fs.String("event", "", "the event name (required)")
		data = fs.String("data", "{}", "the event's data, as JSON")
	case "notify":
		title = fs.String("title", "", "the notification's title (required)")
		message = fs.String("message", "", "the notification's message (required)")
		typ = fs.String("type", "info", "info, warning or error")
	}
	printUsage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: rtserver %s\n\n%s\n\nFlags:\n", spec.usage, spec.about)
		fs.VisitAll(func(f *flag.Flag) {
			arg, help := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  --%s\n    \t%s", strings.TrimSpace(f.Name+" "+arg), help)
			if f.DefValue != "" && f.DefValue != "false" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		})
		fmt.Fprintln(w, "\nExit codes: 0 done, 1 the server answered an error, 2 usage error, 3 server unreachable.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return exitOK
		}
		printUsage(stderr)
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "rtserver %s: %v\n", name, err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return fail(usagef("unexpected argument %q (see rtserver %s --help)", fs.Arg(0), name))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// The body, checked before anything is read or sent.
	var body []byte
	if spec.method == "POST" {
		fields := map[string]any{}
		need := func(flagName string, v *string) error {
			if strings.TrimSpace(*v) == "" {
				return usagef("--%s is required (see rtserver %s --help)", flagName, name)
			}
			return nil
		}
		var err error
		if user != nil {
			err = errors.Join(err, need("user", user))
			fields["userId"] = *user
		}
		if room != nil {
			err = errors.Join(err, need("room", room))
			fields["room"] = *room
		}
		if event != nil {
			err = errors.Join(err, need("event", event))
			fields["event"] = *event
		}
		if data != nil {
			raw, derr := parseData(*data)
			err = errors.Join(err, derr)
			fields["data"] = raw
		}
		if title != nil {
			err = errors.Join(err, need("title", title), need("message", message))
			fields["title"], fields["message"] = *title, *message
			if !slices.Contains([]string{"info", "warning", "error"}, *typ) {
				err = errors.Join(err, usagef("--type must be info, warning or error, not %q", *typ))
			}
			fields["type"] = *typ
		}
		if err != nil {
			return fail(err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(fields); err != nil {
			return fail(err)
		}
		body = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}

	c, err := newOpClient(name, spec.path, *urlFlag, *keyFlag, *cfgFlag, *signFlag, set, stderr)
	if err != nil {
		return fail(err)
	}
	if *timeout <= 0 {
		return fail(usagef("--timeout must be positive"))
	}
	c.json, c.timeout = *jsonFlag, *timeout

	answer, code := c.call(spec.method, spec.path, body, stdout, stderr)
	if code != exitOK || c.json {
		return code
	}
	switch name {
	case "push":
		printDelivered(stdout, answer, *user, "")
	case "notify":
		printDelivered(stdout, answer, *user, "notification ")
	case "broadcast":
		fmt.Fprintf(stdout, "sent to %s\n", sockets(answer))
	case "room":
		fmt.Fprintf(stdout, "sent to %s in room %s\n", sockets(answer), *room)
	case "status":
		printStatus(stdout, answer)
	case "plugins":
		printPlugins(stdout, answer)
	}
	return exitOK
}

// parseData checks --data and returns it as JSON to embed.
func parseData(s string) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		return nil, usagef("--data is not valid JSON: %v", err)
	}
	return buf.Bytes(), nil
}

// newOpClient settles the URL, the key and the signature version from the flags, the
// environment and the configuration file, in that order.
func newOpClient(name, path, urlFlag, keyFlag, cfgPath, sign string, set map[string]bool, warn io.Writer) (*opClient, error) {
	var cfg *config.Config
	if cfgPath != "" {
		var err error
		if cfg, err = config.Load(cfgPath); err != nil {
			return nil, usagef("configuration %s is not valid:\n%v", cfgPath, err)
		}
	} else if _, err := os.Stat(defaultConfigOp); err == nil {
		// config.hcl found here, not asked for: one that does not validate (say, production
		// without JWT_SECRET in this shell) is passed over, and the flags must say the rest.
		if cfg, err = config.Load(defaultConfigOp); err != nil {
			first, _, _ := strings.Cut(err.Error(), "\n")
			fmt.Fprintf(warn, "rtserver %s: not using %s: %s\n", name, defaultConfigOp, first)
			cfg = nil
		}
	}
	c := &opClient{name: name}

	switch {
	case set["url"]:
		c.url = urlFlag
	case os.Getenv("RTSERVER_URL") != "":
		c.url = os.Getenv("RTSERVER_URL")
	case cfg != nil:
		c.url = configURL(cfg)
	default:
		c.url = defaultURL
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--url %q is not an http:// or https:// URL", c.url)
	}
	c.url = strings.TrimSuffix(c.url, "/")

	switch {
	case set["key"]:
		c.key = keyFlag
	case os.Getenv("API_KEY") != "":
		c.key = os.Getenv("API_KEY")
	case cfg != nil:
		c.key = configKey(cfg)
	}
	if c.key == "" {
		return nil, usagef("no API key: pass --key, set API_KEY, or set the secret of api key \"default\" in the configuration")
	}

	switch {
	case set["sign"]:
		c.sign = strings.ToLower(sign)
		if c.sign != httpapi.SignatureV1 && c.sign != httpapi.SignatureV2 && c.sign != "none" {
			return nil, usagef("--sign must be v1, v2 or none, not %q", sign)
		}
	case cfg != nil && (cfg.API.Signing.Required || slices.Contains(cfg.API.Signing.RequiredRoutes, path)):
		c.sign = httpapi.SignatureV2
	default:
		c.sign = "none"
	}
	return c, nil
}

// configURL is where the configuration says the API listens; an unspecified host means
// this machine.
func configURL(cfg *config.Config) string {
	hostport := cfg.API.Listen
	if hostport == "" {
		if cfg.Server.Port == 0 {
			return defaultURL
		}
		hostport = net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Server.Port))
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return defaultURL
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// configKey is the secret of the key named "default", else of the first key.
func configKey(cfg *config.Config) string {
	for _, k := range cfg.API.Keys {
		if k.Name == "default" {
			return k.Secret
		}
	}
	if len(cfg.API.Keys) > 0 {
		return cfg.API.Keys[0].Secret
	}
	return ""
}

// call sends one request and reports its outcome; on success it returns the decoded
// answer. With --json the answer's body goes to stdout as is, errors included.
func (c *opClient) call(method, path string, body []byte, stdout, stderr io.Writer) (map[string]any, int) {
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(stderr, "rtserver %s: %v\n", c.name, err)
		return nil, exitUsage
	}
	req.Header.Set("X-API-Key", c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.sign != "none" {
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		var n [16]byte
		_, _ = rand.Read(n[:])
		nonce := hex.EncodeToString(n[:])
		// PATH is the route's path: a proxy serving the API under a prefix of the base URL
		// strips it, and the server verifies what reaches it.
		req.Header.Set("X-Request-Timestamp", ts)
		req.Header.Set("X-Request-Nonce", nonce)
		req.Header.Set("X-Signature-Version", c.sign)
		req.Header.Set("X-Signature", httpapi.Sign(c.key, c.sign, method, path, ts, nonce, body))
	}
	client := &http.Client{Timeout: c.timeout}
	res, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "rtserver %s: cannot reach the server at %s: %v\n", c.name, c.url, unwrapURLError(err))
		return nil, exitUnreachable
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxAnswerBytes))
	if err != nil {
		fmt.Fprintf(stderr, "rtserver %s: the answer from %s broke off: %v\n", c.name, c.url, unwrapURLError(err))
		return nil, exitUnreachable
	}
	var answer map[string]any
	isJSON := json.Unmarshal(raw, &answer) == nil && answer != nil
	if c.json && isJSON {
		stdout.Write(raw)
		if !bytes.HasSuffix(raw, []byte("\n")) {
			fmt.Fprintln(stdout)
		}
	}
	if !isJSON {
		text := strings.TrimSpace(string(raw))
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		fmt.Fprintf(stderr, "rtserver %s: HTTP %d, not a JSON answer of the API (is %s the API's address?): %s\n", c.name, res.StatusCode, c.url, text)
		return nil, exitServerError
	}
	if res.StatusCode/100 != 2 || answer["success"] != true {
		code, _ := answer["code"].(string)
		msg, _ := answer["error"].(string)
		if code == "" {
			code = "HTTP " + strconv.Itoa(res.StatusCode)
		}
		line := fmt.Sprintf("rtserver %s: %s: %s (HTTP %d", c.name, code, msg, res.StatusCode)
		if ra, ok := answer["retryAfter"].(float64); ok {
			line += fmt.Sprintf(", retry after %gs", ra)
		}
		if id, ok := answer["requestId"].(string); ok && id != "" {
			line += ", request " + id
		}
		fmt.Fprintln(stderr, line+")")
		return nil, exitServerError
	}
	return answer, exitOK
}

// unwrapURLError drops url.Error's "Get "http://...":" prefix: the URL is printed already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return errors.New("no answer within the --timeout")
		}
		return ue.Err
	}
	return err
}
