package pluginv1

// Values both sides of the go-plugin handshake must agree on. Changing
// ProtocolVersion makes old plugins refuse to start with a clear message instead
// of failing on an incompatible wire format.
const (
	ProtocolVersion  = 1
	MagicCookieKey   = "RTSERVER_PLUGIN_COOKIE"
	MagicCookieValue = "5c1f6a3e-rtserver-plugin-v1"

	// PluginSetName is the key under which the plugin is dispensed.
	PluginSetName = "rtserver"

	// LifelineFDEnv names the inherited file descriptor (a pipe's read end) that
	// the core holds open for as long as it lives: when reading it returns EOF the
	// core is gone and the plugin exits, so plugins never outlive a killed core.
	LifelineFDEnv = "RTSERVER_PLUGIN_LIFELINE_FD"

	// LogLevelEnv passes the core's log level, so plugins do not format lines the
	// core would drop anyway.
	LogLevelEnv = "RTSERVER_PLUGIN_LOG_LEVEL"
)
