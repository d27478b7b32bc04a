# rtserver default configuration. Every setting is written out with its default value;
# delete any line (or block) to get the same default. env("NAME", "default") reads the
# environment. Durations are strings with a unit: "500ms", "25s", "2m".

# "development" lets the server generate missing secrets at start (and log them); any
# other environment refuses to start without JWT_SECRET and API_KEY.
environment = env("ENVIRONMENT", "development")

server {
  host                = "0.0.0.0"           # interface to listen on
  port                = env("PORT", "3000") # TCP port for Socket.IO, the HTTP API and /health
  shutdown_timeout    = "10s"               # how long a graceful shutdown may take
  trusted_proxies     = []                  # IPs/CIDRs whose X-Forwarded-For is believed
  max_header_bytes    = 16384               # request line + headers of one request (431 beyond)
  read_header_timeout = "10s"               # time a request's line and headers may take to arrive
  idle_timeout        = "120s"              # keep-alive connection without a request, or a body that stalls
}

socketio {
  path                   = "/socket.io/"             # the Socket.IO endpoint
  transports             = ["polling", "websocket"]  # allowed Engine.IO transports
  ping_interval          = "25s"                     # heartbeat interval
  ping_timeout           = "20s"                     # how long to wait for a pong
  max_payload            = 1000000                   # bytes per polling body or websocket frame
  connect_timeout        = "45s"                     # time allowed to send CONNECT after the handshake
  cors_origins           = ["*"]                     # allowed browser origins; "*" = any
  max_outbound_bytes     = 1048576                   # bytes queued to one slow client before it is dropped
  max_event_name_length  = 128                       # longest event name a client or the HTTP API may send
  max_room_name_length   = 128                       # longest room name a client may join or the API address
  max_rooms_per_socket   = 50                        # rooms one socket may be in
  max_json_depth         = 32                        # deepest nesting accepted in client JSON
  max_connections        = 20000                     # connections in total, CONNECTed or not
  max_connections_per_ip = 1000                      # connections from one client IP, CONNECTed or not
  max_connect_payload    = 16384                     # bytes of any message before CONNECT is accepted
  serve_client           = true                      # serve the official client at <path>socket.io.js
  client_dir             = "web/client/node_modules/socket.io-client/dist" # fetched by `make client`
}

auth {
  jwt_secret           = env("JWT_SECRET") # HMAC secret for HS256/HS384/HS512 tokens
  algorithms           = ["HS256"]         # accepted: HS256 HS384 HS512 RS256 ES256
  public_key_file      = ""                # PEM public key, for RS256 or ES256
  issuer               = ""                # required "iss" when set
  audience             = ""                # required "aud" when set
  leeway               = "30s"             # clock skew allowed on exp, nbf and iat
  disconnect_on_expiry = false             # disconnect a socket when its token expires
}

api {
  listen         = ""      # "" = same listener as Socket.IO; else "host:port"
  max_body_bytes = 1048576 # largest request body

  # One block per API key; the label names the key. Scopes: push broadcast room status
  # plugins notify, or "*" for all.
  key "default" {
    secret = env("API_KEY") # sent in X-API-Key; at most 512 bytes
    scopes = ["*"]          # what this key may call
  }

  signing {
    required        = false  # require X-Signature on every API route
    required_routes = []     # or only on these, e.g. ["/api/broadcast"]
    window          = "300s" # accepted age of X-Request-Timestamp
    min_version     = "v1"   # oldest X-Signature-Version accepted: "v1" or "v2" (v1 does not sign the body)
  }
}

rate_limit {
  enabled                     = true   # false turns every limiter off
  ws_connections_per_minute   = 100    # per client IP; 0 = no limit
  ws_messages_per_minute      = 1000   # per connection; 0 = no limit
  http_requests_per_minute    = 100    # per API key; 0 = no limit
  http_failed_auth_per_minute = 20     # per IP, requests with a missing or wrong key
  max_keys                    = 100000 # keys each limiter remembers (bounds memory)
}

plugins {
  dir             = "plugins" # drop folder watched for plugin binaries
  default_timeout = "5s"      # deadline of one plugin call
  max_in_flight   = 256       # calls in flight per plugin
  drain_timeout   = "30s"     # cap on draining calls when a plugin is replaced
}

# Optional per-plugin settings; the label is the binary's name in the plugins folder.
# plugin "echo" {
#   events        = ["*"]             # client:event types routed to it
#   messages      = []                # client:message types routed to it
#   actions       = []                # client:action names routed to it
#   timeout       = "2s"              # overrides plugins.default_timeout
#   max_in_flight = 64                # overrides plugins.max_in_flight
#   sha256        = ""                # when set, only a binary with this hash is loaded
#   config        = { any = "value" } # handed to the plugin as JSON
# }

recovery {
  enabled                    = true     # Socket.IO connection state recovery
  max_disconnection_duration = "2m"     # how long a session is kept after a disconnect
  max_packets_per_session    = 1000     # missed packets kept per session
  max_packets_total          = 100000   # missed packets kept in total
  max_bytes_total            = 33554432 # bytes of missed packets kept in total (32 MiB)
}

cluster {
  # Redis that joins this node to the others (wire-compatible with
  # @socket.io/redis-adapter); "" keeps a single node that needs no Redis.
  redis_url       = env("REDIS_URL", "") # e.g. redis://127.0.0.1:6379/0
  key_prefix      = "socket.io"          # channel prefix, the official adapter's "key"
  connect_timeout = "5s"                 # start-up wait for Redis; then serves alone, degraded
  request_timeout = "2s"                 # wait for other nodes' answers; then answers partial
  node_ttl        = "15s"                # a killed node's per-IP connection counts expire after this

  # Instead of redis_url (write at most one of the three), a master that Redis Sentinels
  # watch; the nodes follow it through failovers:
  # sentinel {
  #   master_name       = "mymaster"                            # the Sentinels' "sentinel monitor" name
  #   addrs             = ["10.0.0.1:26379", "10.0.0.2:26379"]  # host:port of each Sentinel
  #   username          = ""                                    # ACL user of the master and replicas
  #   password          = env("REDIS_PASSWORD", "")             # their password
  #   sentinel_username = ""                                    # the Sentinels' own ACL user, if any
  #   sentinel_password = ""                                    # the Sentinels' own password, if any
  #   db                = 0                                     # database number
  #   tls               = false                                 # TLS to Sentinels and Redis
  # }
  # or a Redis Cluster (classic pub/sub is cluster-wide; the keys that scripts use together
  # share one hash slot):
  # redis_cluster {
  #   addrs    = ["10.0.0.1:7000", "10.0.0.2:7000"] # seed nodes, host:port; one is enough
  #   username = ""                                 # ACL user
  #   password = env("REDIS_PASSWORD", "")          # password
  #   tls      = false                              # TLS to every node
  # }
}

metrics {
  enabled = true       # serve Prometheus metrics
  path    = "/metrics" # where
}

log {
  level  = "info" # trace debug info warn error off
  format = "text" # text | json
}

# The browser chat page and its token endpoint (POST /dev/token): development only; in any
# other environment neither exists, whatever enabled says.
demo {
  enabled           = true       # serve the page at path in development
  path              = "/"        # URL prefix of the page
  dir               = "web/demo" # the page's files
  token_ttl         = "15m"      # lifetime of a token the page mints (at most 1h)
  tokens_per_minute = 10         # tokens minted per client IP
}

admin {
  # The official Socket.IO Admin UI: the /admin namespace and its files.
  enabled   = true
  username  = "admin"
  password  = env("ADMIN_PASSWORD", "") # bcrypt-hashed when read; development makes one up
  mode      = "development"             # development | production (figures only)
  read_only = false
  ui_path   = "/admin-ui/"              # "" serves no UI
}
