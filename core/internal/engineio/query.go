package engineio

import (
	"net/url"
	"strings"
)

// queryGet is url.ParseQuery(raw).Get(key) without building the map: every handshake and
// polling request reads three parameters, and parsing the whole query allocated a map and
// its strings each time. Pairs are read as ParseQuery reads them: split at '&', one with a
// ';' or a bad escape skipped, key and value unescaped, the first match wins.
func queryGet(raw, key string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			var err error
			if v, err = url.QueryUnescape(v); err != nil {
				continue
			}
		}
		return v
	}
	return ""
}
