package mcpmux

import (
	"github.com/mark3labs/mcp-go/mcp"
)

// logMethod is the notification that carries a log message.
const logMethod = "notifications/message"

// validLogLevel reports whether level is one of the syslog severities
// MCP's LoggingLevel allows.
func validLogLevel(level string) bool {
	return mcp.LoggingLevel(level).ShouldSendTo(mcp.LoggingLevelDebug)
}

// requestLogLevel reads the log level a 2026-07-28 request asked for in
// its _meta, or "" when it asked for none.
func requestLogLevel(params []byte) string {
	level, _ := stringMember(member(params, "_meta"), mcp.MetaKeyLogLevel)
	return level
}

// notifySink is where an upstream's notifications for this request go.
// At 2026-07-28 the log level is per request, and a server must not send
// notifications/message for a request that did not ask for a level, nor
// below the level asked for (SEP-2575; Logging): an upstream that sends
// them anyway is not relayed. A legacy session's level is the one its
// agent set with logging/setLevel, and with none set every message goes,
// as the upstream's own default would send them.
func (x *exchange) notifySink() notifySink {
	if !x.modern {
		if x.session == nil {
			return x.rs.notify
		}
		return x.levelled(func() (mcp.LoggingLevel, bool) {
			level := x.session.logLevel()
			return level, level != ""
		})
	}
	minimum := mcp.LoggingLevel(requestLogLevel(x.params))
	return x.levelled(func() (mcp.LoggingLevel, bool) { return minimum, true })
}

// levelled relays notifications, log messages only at or above the level
// minimum gives, when it gives one (and none when it gives "").
func (x *exchange) levelled(minimum func() (mcp.LoggingLevel, bool)) notifySink {
	// minimum is asked per message, not once: a legacy agent may change
	// its session's level while a call runs.
	return func(msg []byte) {
		if method, _ := stringMember(msg, "method"); method == logMethod {
			level, _ := stringMember(member(msg, "params"), "level")
			if least, set := minimum(); set && (least == "" || !mcp.LoggingLevel(level).ShouldSendTo(least)) {
				return
			}
		}
		x.rs.notify(msg)
	}
}
