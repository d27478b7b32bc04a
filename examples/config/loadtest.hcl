# Load-test configuration: the defaults of config.hcl (secrets and port from the
# environment), with every rate limit off and the per-IP connection cap raised, so that one
# load generator on one address can open tens of thousands of connections.
#   make run CONFIG=examples/config/loadtest.hcl
environment = env("ENVIRONMENT", "development")

server {
  port = env("PORT", "3000")
}

socketio {
  max_connections        = 200000
  max_connections_per_ip = 200000
}

auth {
  jwt_secret = env("JWT_SECRET")
}

api {
  key "default" {
    secret = env("API_KEY")
    scopes = ["*"]
  }
}

rate_limit {
  enabled = false
}

cluster {
  redis_url = env("REDIS_URL", "") # set to run the nodes of a cluster scenario
}

log {
  level = "warn"
}
