//go:build !linux

package pluginhost

// Without waitid's WNOWAIT the leader is reaped first (its pipes wait at most
// pipeWaitDelay for the rest of the group), then the group is killed.
const waitsWithoutReaping = false

func waitExited(int) {}
