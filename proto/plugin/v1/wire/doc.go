// Package wire holds the rules the core (core/pluginhost) and the SDK (sdk) must agree on
// beyond the messages of package pluginv1: the error codes of plugin calls and host
// calls, the bounds on one stream message and how a batch is gathered, deadlines carried
// as time left, how a request's payload members are read, and the format of the
// timestamps in events. What needs the gRPC types lives next to them in pluginv1 (how a
// host-call error travels, the size estimate of a message). It imports only the standard
// library, so that the core's domain packages can use its codes; plugin authors use
// package sdk instead.
package wire
