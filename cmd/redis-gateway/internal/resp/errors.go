package resp

import (
	"errors"
	"fmt"
	"strings"
)

// Error codes: the first word of a RESP error reply. go-redis turns every error
// reply into a Go error whose text is the whole line, code included, so Atlantis
// logs and comments show it as written here.
const (
	// CodeErr is Redis's generic code.
	CodeErr = "ERR"
	// CodeLocked refuses a SET of a lock key that another owner holds. It is this
	// gateway's own code: Redis has no such refusal, because a Redis SET always
	// overwrites, which is how two Atlantis replicas could both take one lock.
	CodeLocked = "LOCKED"
	// CodeNoAuth answers a command before authentication, as Redis does.
	CodeNoAuth = "NOAUTH"
	// CodeWrongPass answers a wrong password, as Redis does.
	CodeWrongPass = "WRONGPASS"
	// CodeNoProto answers HELLO with a protocol version other than 2 or 3, as Redis does.
	CodeNoProto = "NOPROTO"
	// CodeTryAgain answers a command that arrives while the gateway shuts down.
	// go-redis retries commands that get it, on a new connection (through a
	// Service, possibly another gateway replica).
	CodeTryAgain = "TRYAGAIN"
)

// Error is an error that becomes a RESP error reply with its own code.
type Error struct {
	// Code is the reply's first word, such as CodeLocked.
	Code string
	// Kind is the metrics label of the error (see Kinds).
	Kind string
	// Msg is the rest of the reply.
	Msg string
}

// Error returns the reply text.
func (e *Error) Error() string { return e.Code + " " + e.Msg }

// Kinds of errors, the values of the gateway's error metric's "kind" label.
const (
	KindLocked         = "locked"          // a lock key held by another owner
	KindUnknownCommand = "unknown_command" // a command or subcommand the gateway does not serve
	KindSyntax         = "syntax"          // wrong arguments or options
	KindBadKey         = "bad_key"         // a key shape Atlantis never writes
	KindBadValue       = "bad_value"       // a value that does not fit its key
	KindAuth           = "auth"            // missing or wrong credentials
	KindBackend        = "backend"         // the Kubernetes API failed
	KindShutdown       = "shutdown"        // the gateway is stopping
)

// Errorf returns an *Error with code CodeErr.
func Errorf(kind, format string, args ...any) *Error {
	return &Error{Code: CodeErr, Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Locked returns the refusal of a lock key held by another owner.
func Locked(format string, args ...any) *Error {
	return &Error{Code: CodeLocked, Kind: KindLocked, Msg: fmt.Sprintf(format, args...)}
}

// reply returns the error line of err (without the leading "-") and its kind. An
// error that is not an *Error is a failure of the backend (the API server).
func reply(err error) (line, kind string) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: CodeErr, Kind: KindBackend, Msg: err.Error()}
	}
	// A reply is one line: the RESP writer would cut at a line break, so
	// replace them to keep the whole message.
	msg := strings.NewReplacer("\r\n", "; ", "\n", "; ", "\r", " ").Replace(e.Msg)
	return e.Code + " " + msg, e.Kind
}
