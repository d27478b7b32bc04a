//go:build unix

package sdk

import (
	"os"
	"syscall"
)

// killOwnGroup kills the processes this plugin started when the core is gone: the
// core starts each plugin as the leader of a process group of its own, and stops the
// group itself, unless it died first. A plugin started otherwise is left alone.
func killOwnGroup() {
	if syscall.Getpgrp() == os.Getpid() {
		_ = syscall.Kill(0, syscall.SIGKILL) // this process too: it is exiting anyway
	}
}
