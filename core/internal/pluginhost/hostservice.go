package pluginhost

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/rtserver/rtserver/core/internal/dispatch"
	pluginv1 "github.com/rtserver/rtserver/proto/plugin/v1"
	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// hostService serves the Host gRPC service to one plugin, forwarding to the core.
type hostService struct {
	pluginv1.UnimplementedHostServer
	core dispatch.Host
}

var _ pluginv1.HostServer = (*hostService)(nil)

func (s *hostService) ready() error {
	if s.core == nil {
		return pluginv1.HostError(wire.CodeHostUnavailable, "the core offers no host service")
	}
	return nil
}

// hostErr is how the core's refusal reaches the plugin: a *dispatch.Error keeps its code
// (the SDK turns it into an error the plugin can test with errors.Is); any other error
// arrives without one.
func hostErr(err error) error {
	if err == nil {
		return nil
	}
	var de *dispatch.Error
	if errors.As(err, &de) {
		return pluginv1.HostError(de.Code, de.Message)
	}
	return status.Error(codes.Unknown, err.Error())
}

func (s *hostService) EmitToUser(ctx context.Context, r *pluginv1.EmitToUserRequest) (*pluginv1.EmitResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	n, err := s.core.EmitToUser(ctx, r.GetUserId(), r.GetEvent(), json.RawMessage(r.GetData()))
	if err != nil {
		return nil, hostErr(err)
	}
	return &pluginv1.EmitResponse{Count: int64(n)}, nil
}

func (s *hostService) EmitToRoom(ctx context.Context, r *pluginv1.EmitToRoomRequest) (*pluginv1.EmitResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	n, err := s.core.EmitToRoom(ctx, r.GetRoom(), r.GetEvent(), json.RawMessage(r.GetData()), r.GetExceptSocketId())
	if err != nil {
		return nil, hostErr(err)
	}
	return &pluginv1.EmitResponse{Count: int64(n)}, nil
}

func (s *hostService) Broadcast(ctx context.Context, r *pluginv1.BroadcastRequest) (*pluginv1.EmitResponse, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	n, err := s.core.Broadcast(ctx, r.GetEvent(), json.RawMessage(r.GetData()))
	if err != nil {
		return nil, hostErr(err)
	}
	return &pluginv1.EmitResponse{Count: int64(n)}, nil
}

func (s *hostService) JoinRoom(ctx context.Context, r *pluginv1.RoomRequest) (*pluginv1.Empty, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	return &pluginv1.Empty{}, hostErr(s.core.JoinRoom(ctx, r.GetSocketId(), r.GetRoom()))
}

func (s *hostService) LeaveRoom(ctx context.Context, r *pluginv1.RoomRequest) (*pluginv1.Empty, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	return &pluginv1.Empty{}, hostErr(s.core.LeaveRoom(ctx, r.GetSocketId(), r.GetRoom()))
}

func (s *hostService) DisconnectSocket(ctx context.Context, r *pluginv1.DisconnectSocketRequest) (*pluginv1.Empty, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	return &pluginv1.Empty{}, hostErr(s.core.DisconnectSocket(ctx, r.GetSocketId()))
}
