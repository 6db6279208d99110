package lb

import (
	"fmt"
	"time"
)

// confDuration spells d in the largest unit that both nginx and haproxy
// understand and that represents it exactly (h, m, s or ms), so "10m"
// stays readable instead of becoming "600000ms".
func confDuration(d time.Duration) string {
	for _, u := range []struct {
		unit   time.Duration
		suffix string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.unit == 0 {
			return fmt.Sprintf("%d%s", d/u.unit, u.suffix)
		}
	}
	// Sub-millisecond precision is dropped: neither proxy goes finer.
	return fmt.Sprintf("%dms", d/time.Millisecond)
}
