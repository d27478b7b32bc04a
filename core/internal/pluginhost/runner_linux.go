package pluginhost

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

const waitsWithoutReaping = true

// waitExited returns once process pid has exited, without reaping it: while it is a
// zombie its pid, which is also its process group's id, cannot be reused.
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, syscall.EINTR) {
			return
		}
	}
}
