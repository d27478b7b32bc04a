package wire

import (
	"testing"
	"time"
)

func TestGetShares(t *testing.T) {
	var c Deadlines
	const timeout = 2 * time.Second
	before := time.Now()
	a := c.Get(timeout)
	b := c.Get(timeout)
	after := time.Now()
	if a != b {
		t.Fatal("two requests in the same instant got different contexts")
	}
	dl, ok := a.Deadline()
	if !ok {
		t.Fatal("no deadline")
	}
	if dl.After(after.Add(timeout)) {
		t.Fatalf("deadline %v is later than the timeout asks", dl.Sub(after))
	}
	if early := after.Add(timeout).Sub(dl); early > timeout/100 {
		t.Fatalf("deadline brought forward by %v, more than 1%% of the timeout", early)
	}
	if dl.Before(before.Add(timeout - timeout/100)) {
		t.Fatalf("deadline %v too early", dl.Sub(before))
	}
	if a.Err() != nil {
		t.Fatal("done early")
	}
}

func TestGetRenewsAfterSlack(t *testing.T) {
	var c Deadlines
	const timeout = 100 * time.Millisecond // slack 1 ms
	a := c.Get(timeout)
	time.Sleep(5 * time.Millisecond)
	b := c.Get(timeout)
	if a == b {
		t.Fatal("a context older than its slack was shared")
	}
	<-a.Done()
	if a.Err() == nil {
		t.Fatal("done without an error")
	}
}
