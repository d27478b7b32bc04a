package engineio

import (
	"net/url"
	"testing"
)

func TestQueryGetMatchesParseQuery(t *testing.T) {
	for _, raw := range queryCases {
		for _, key := range []string{"transport", "EIO", "sid", "", "a b"} {
			want := func() string { v, _ := url.ParseQuery(raw); return v.Get(key) }()
			if got := queryGet(raw, key); got != want {
				t.Errorf("queryGet(%q, %q) = %q, ParseQuery gives %q", raw, key, got, want)
			}
		}
	}
}

var queryCases = []string{
	"", "EIO=4&transport=websocket", "EIO=4&transport=polling&t=abc&sid=x-Y_z",
	"transport=polling&transport=websocket", "EIO=4;transport=websocket&transport=polling",
	"tr%61nsport=web%73ocket", "transport=%zz&transport=polling", "%zz=1&EIO=4",
	"sid=a+b", "a+b=1", "a%20b=2", "EIO", "EIO=", "&&EIO=4&", "sid=%2B", "=x&sid==y",
}

func FuzzQueryGet(f *testing.F) {
	for _, c := range queryCases {
		f.Add(c, "sid")
	}
	f.Fuzz(func(t *testing.T, raw, key string) {
		v, _ := url.ParseQuery(raw)
		if got, want := queryGet(raw, key), v.Get(key); got != want {
			t.Fatalf("queryGet(%q, %q) = %q, ParseQuery gives %q", raw, key, got, want)
		}
	})
}
