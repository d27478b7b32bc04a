// Package pluginv1 is the wire contract between the rtserver core (core/pluginhost)
// and plugin processes (sdk): the generated gRPC code for plugin.proto plus the
// go-plugin handshake values both sides must agree on. Plugin authors never import
// it directly; they use package sdk.
package pluginv1
