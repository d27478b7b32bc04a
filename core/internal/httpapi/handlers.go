package httpapi

import (
	"encoding/json"
	"fmt"

	"github.com/gofiber/fiber/v2"
	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

type deliveredResponse struct {
	Success   bool   `json:"success"`
	Delivered bool   `json:"delivered"`
	Partial   bool   `json:"partial,omitempty"` // a cluster node did not answer in time
	Timestamp string `json:"timestamp"`
}

type recipientsResponse struct {
	Success    bool   `json:"success"`
	Recipients int    `json:"recipients"`
	Partial    bool   `json:"partial,omitempty"` // a cluster node did not answer in time
	Timestamp  string `json:"timestamp"`
}

type statusResponse struct {
	Success     bool          `json:"success"`
	Status      string        `json:"status"`
	Connections int           `json:"connections"`
	Rooms       int           `json:"rooms"`
	Uptime      int64         `json:"uptime"`
	Memory      memoryStats   `json:"memory"`
	Cluster     *ClusterStats `json:"cluster,omitempty"`
	Timestamp   string        `json:"timestamp"`
}

type healthResponse struct {
	Status    string         `json:"status"`
	Timestamp string         `json:"timestamp"`
	Cluster   *clusterHealth `json:"cluster,omitempty"`
}

type pluginsResponse struct {
	Success bool         `json:"success"`
	Plugins []PluginInfo `json:"plugins"`
}

type notificationPayload struct {
	Title     string `json:"title"`
	Message   string `json:"message"`
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
}

// body is the raw request body: Fiber's c.Body() would inflate a Content-Encoding'd body
// past the size limit, so the API never decompresses.
func body(c *fiber.Ctx) []byte { return c.Request().Body() }

func (a *API) push(c *fiber.Ctx) error {
	userID, event, data, e := decodePush(body(c), a.names)
	if e != nil {
		return e
	}
	n := a.pushCounted(userID, event, data)
	return c.JSON(deliveredResponse{Success: true, Delivered: n.N > 0, Partial: n.Partial, Timestamp: wire.FormatTime(a.now())})
}

func (a *API) broadcast(c *fiber.Ctx) error {
	event, data, e := decodeBroadcast(body(c), a.names)
	if e != nil {
		return e
	}
	n := a.broadcastCounted(event, data)
	return c.JSON(recipientsResponse{Success: true, Recipients: n.N, Partial: n.Partial, Timestamp: wire.FormatTime(a.now())})
}

func (a *API) room(c *fiber.Ctx) error {
	room, event, data, e := decodeRoom(body(c), a.names)
	if e != nil {
		return e
	}
	n := a.roomCounted(room, event, data)
	return c.JSON(recipientsResponse{Success: true, Recipients: n.N, Partial: n.Partial, Timestamp: wire.FormatTime(a.now())})
}

func (a *API) notification(c *fiber.Ctx) error {
	n, e := decodeNotification(body(c))
	if e != nil {
		return e
	}
	ts := wire.FormatTime(a.now())
	data, err := json.Marshal(notificationPayload{Title: n.title, Message: n.message, Type: n.typ, Timestamp: ts})
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	reached := a.pushCounted(n.userID, NotificationEvent, data)
	return c.JSON(deliveredResponse{Success: true, Delivered: reached.N > 0, Partial: reached.Partial, Timestamp: ts})
}

func (a *API) status(c *fiber.Ctx) error {
	s := a.hub.Stats()
	now := a.now()
	return c.JSON(statusResponse{
		Success:     true,
		Status:      "ok",
		Connections: s.Connections,
		Rooms:       s.Rooms,
		Uptime:      int64(now.Sub(a.started).Seconds()),
		Memory:      readMemoryStats(),
		Cluster:     a.clusterStats(),
		Timestamp:   wire.FormatTime(now),
	})
}

func (a *API) health(c *fiber.Ctx) error {
	status, cl := healthOf(a.o.Cluster)
	return c.JSON(healthResponse{Status: status, Timestamp: wire.FormatTime(a.now()), Cluster: cl})
}

func (a *API) pluginList(c *fiber.Ctx) error {
	list := []PluginInfo{}
	if a.plugins != nil {
		if p := a.plugins.Plugins(); p != nil {
			list = p
		}
	}
	return c.JSON(pluginsResponse{Success: true, Plugins: list})
}
