// Package socketio is the Socket.IO v5 protocol on top of core/engineio: packets
// (CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK), the main
// namespace (and, without rooms, broadcasts or recovery, the extra namespaces of
// Options.Namespaces), connect middleware, acknowledgements in both directions, rooms and
// emits.
//
// Inbound packets of one socket are handled in arrival order on the goroutine engineio
// delivers them on (a poller goroutine for websocket): middleware and event handlers must
// not block for long. A handler that calls out (a plugin over gRPC, a database) starts its
// own goroutine and answers through the Ack or an Emit later; both are safe from any
// goroutine.
//
// Files: packet.go (the v5 codec), jsonscan.go (the reflection-free JSON splitter the
// decoder uses), server.go (rooms, broadcasts, the engineio handler), client.go (one
// session: its sockets by namespace, inbound packets, attachments), socket.go (one
// socket: connect, events, acks), recovery.go (connection state recovery).
//
// Broadcasts encode a packet once into engineio Messages shared by every recipient; no
// goroutine is kept per socket (connect timeouts and ack timeouts are runtime timers).
package socketio
