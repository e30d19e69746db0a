// Package resp is the gateway's Redis-protocol (RESP2 and RESP3) server: the
// connection handshake that go-redis v9 makes (HELLO, AUTH, SELECT, CLIENT SETINFO,
// PING), and the data commands that Atlantis's Redis backend sends (GET, SET, DEL,
// SCAN, EVAL), which it hands to a Backend. Every other command, subcommand or
// option gets an error reply that names it: nothing is dropped or half-served.
//
// The server is built on github.com/tidwall/redcon, which parses RESP and runs one
// goroutine per connection; commands of one connection run in order, those of
// different connections in parallel. Each command's reply is written only once the
// Backend has finished, so a reply "OK" to a SET means the write is durable in the
// Kubernetes API.
package resp

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/tidwall/redcon"
	"k8s.io/utils/clock"
)

// Backend is the key space the server serves; keyspace.Space is the gateway's. Its
// errors become error replies: an *Error with its code, any other error with code
// ERR and kind KindBackend.
type Backend interface {
	// Get returns the value of key, or found=false when it has none.
	Get(ctx context.Context, key string) (value []byte, found bool, err error)
	// Set stores value at key.
	Set(ctx context.Context, key string, value []byte) error
	// Del deletes key and says whether it existed.
	Del(ctx context.Context, key string) (deleted bool, err error)
	// Keys returns every key that the glob pattern matches ("" matches all).
	Keys(ctx context.Context, pattern string) ([]string, error)
	// Eval runs a Lua script that the backend recognises, with its keys and
	// arguments, and returns its bulk-string result or found=false for nil.
	Eval(ctx context.Context, script string, keys, args []string) (value []byte, found bool, err error)
}

// Observer is told about every command and connection, for metrics.
type Observer interface {
	// Command reports one command: its name (lower case, "unknown" for a command
	// the server does not serve), how long it took, and the kind of its error
	// ("" when it succeeded).
	Command(name string, took time.Duration, errKind string)
	// Connections reports a connection opened (+1) or closed (-1).
	Connections(delta int)
}

// Config configures a Server.
type Config struct {
	// Username and Password, when Password is not empty, are the credentials that
	// clients must give (HELLO ... AUTH, or AUTH) before any other command. Redis's
	// default user is "default"; an empty Username means that.
	Username, Password string
	// DB is the only database index that SELECT accepts. Atlantis selects its
	// --redis-db when it is not 0.
	DB int
	// CommandTimeout bounds each command's work in the Backend.
	CommandTimeout time.Duration
	// Clock measures command latencies.
	Clock clock.PassiveClock
	// Observer, when not nil, is told about commands and connections.
	Observer Observer
	// Version is the server version HELLO reports.
	Version string
	// Log receives connection-level problems.
	Log logr.Logger
}

// serverName is what HELLO reports as the server.
const serverName = "atlantis-redis-gateway"

// Server serves RESP connections to a Backend.
type Server struct {
	backend Backend
	cfg     Config
	srv     *redcon.Server
	nextID  atomic.Int64

	// mu guards draining against new commands starting, so that Shutdown's wait
	// for the commands in flight never races with one more beginning.
	mu       sync.RWMutex
	draining bool
	inflight sync.WaitGroup
}

// New returns a server of backend b.
func New(b Backend, cfg Config) *Server {
	if cfg.Username == "" {
		cfg.Username = "default"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 30 * time.Second
	}
	s := &Server{backend: b, cfg: cfg}
	s.srv = redcon.NewServer("", s.handle, s.accept, s.closed)
	s.srv.AcceptError = func(err error) { s.cfg.Log.Error(err, "accepting a connection") }
	return s
}

// Serve serves connections from ln (a TLS listener for TLS) until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops the server: commands that arrive from now on get a TRYAGAIN reply
// (go-redis retries them on a new connection), the commands in flight finish (until
// ctx ends), and then the listener and every connection close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.New("commands still in flight when the shutdown grace period ended")
	}
	return errors.Join(err, s.srv.Close())
}

// conn is the state of one client connection.
type conn struct {
	id     int64
	authed bool
	// selected is whether the connection is on the served database: from the
	// start when that is 0 (a Redis connection starts on database 0), else once
	// SELECT chose it.
	selected bool
	protocol int // 2 or 3
	name     string
	libName  string
	libVer   string
}

func (s *Server) accept(c redcon.Conn) bool {
	c.SetContext(&conn{id: s.nextID.Add(1), authed: s.cfg.Password == "", selected: s.cfg.DB == 0, protocol: 2})
	if s.cfg.Observer != nil {
		s.cfg.Observer.Connections(+1)
	}
	return true
}

func (s *Server) closed(_ redcon.Conn, err error) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.Connections(-1)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		s.cfg.Log.V(1).Info("connection ended", "error", err.Error())
	}
}

// writer writes one reply in the connection's protocol.
type writer struct {
	redcon.Conn
	st *conn
}

// null writes RESP3's null or RESP2's null bulk string.
func (w writer) null() {
	if w.st.protocol == 3 {
		w.WriteRaw([]byte("_\r\n"))
		return
	}
	w.WriteNull()
}

// bulkOrNull writes v, or null when it was not found.
func (w writer) bulkOrNull(v []byte, found bool) {
	if found {
		w.WriteBulk(v)
		return
	}
	w.null()
}

// mapHeader starts a map of n pairs: a RESP3 map, or a RESP2 array of 2n items.
func (w writer) mapHeader(n int) {
	if w.st.protocol == 3 {
		w.WriteRaw([]byte("%" + strconv.Itoa(n) + "\r\n"))
		return
	}
	w.WriteArray(2 * n)
}

// handler runs one command. It returns the error to reply with, having written
// nothing, or nil once it has written its reply.
type handler func(ctx context.Context, w writer, args []string) error

// commands are the commands the server serves, by lower-case name, with the least
// and most number of arguments after the name (-1: any number).
var commands = map[string]command{
	"hello":  {min: 0, max: 6, noAuth: true, run: func(s *Server) handler { return s.hello }},
	"auth":   {min: 1, max: 2, noAuth: true, run: func(s *Server) handler { return s.auth }},
	"quit":   {min: 0, max: 0, noAuth: true, run: func(s *Server) handler { return s.quit }},
	"ping":   {min: 0, max: 1, run: func(s *Server) handler { return s.ping }},
	"select": {min: 1, max: 1, run: func(s *Server) handler { return s.selectDB }},
	"client": {min: 1, max: -1, run: func(s *Server) handler { return s.client }},
	"get":    {min: 1, max: 1, data: true, run: func(s *Server) handler { return s.get }},
	"set":    {min: 2, max: -1, data: true, run: func(s *Server) handler { return s.set }},
	"del":    {min: 1, max: -1, data: true, run: func(s *Server) handler { return s.del }},
	"scan":   {min: 1, max: -1, data: true, run: func(s *Server) handler { return s.scan }},
	"eval":   {min: 2, max: -1, data: true, run: func(s *Server) handler { return s.eval }},
}

// command is what the server knows of a command.
type command struct {
	min, max int  // arguments after the name; max -1: any number
	noAuth   bool // allowed before authentication
	data     bool // reads or writes keys, so needs the served database selected
	run      func(s *Server) handler
}

func (s *Server) handle(c redcon.Conn, cmd redcon.Command) {
	st, _ := c.Context().(*conn)
	w := writer{Conn: c, st: st}
	args := make([]string, len(cmd.Args))
	for i, a := range cmd.Args {
		args[i] = string(a)
	}
	name := strings.ToLower(args[0])
	spec, known := commands[name]
	metricName := name
	if !known {
		metricName = "unknown"
	}

	s.mu.RLock()
	if s.draining {
		s.mu.RUnlock()
		s.finish(w, metricName, 0, &Error{Code: CodeTryAgain, Kind: KindShutdown, Msg: "the gateway is shutting down; retry on a new connection"})
		return
	}
	s.inflight.Add(1)
	s.mu.RUnlock()
	defer s.inflight.Done()

	start := s.cfg.Clock.Now()
	err := s.run(w, name, args[1:], spec, known)
	s.finish(w, metricName, s.cfg.Clock.Since(start), err)
}

// run checks a command's name, arguments, authentication and database, then runs
// it.
func (s *Server) run(w writer, name string, args []string, cmd command, known bool) error {
	switch {
	case !known:
		return Errorf(KindUnknownCommand, "unknown command '%s', with args beginning with: %s; this gateway serves only what Atlantis's Redis backend sends (GET, SET, DEL, SCAN, EVAL, PING and the connection handshake)", name, quoteArgs(args))
	case !w.st.authed && !cmd.noAuth:
		return &Error{Code: CodeNoAuth, Kind: KindAuth, Msg: "Authentication required."}
	case len(args) < cmd.min || (cmd.max >= 0 && len(args) > cmd.max):
		return Errorf(KindSyntax, "wrong number of arguments for '%s' command", name)
	case cmd.data && !w.st.selected:
		// A connection starts on database 0, which this gateway does not serve:
		// Atlantis without --redis-db would write where it does not mean to.
		return Errorf(KindSyntax, "this gateway serves only DB %d (its --redis-db flag), and this connection is on DB 0: give Atlantis --redis-db=%d", s.cfg.DB, s.cfg.DB)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CommandTimeout)
	defer cancel()
	return cmd.run(s)(ctx, w, args)
}

// finish writes err's reply, if any, and reports the command.
func (s *Server) finish(w writer, name string, took time.Duration, err error) {
	kind := ""
	if err != nil {
		var line string
		line, kind = reply(err)
		w.WriteError(line)
		if kind == KindBackend {
			// The API server failed: what an operator of the gateway must see.
			// Refusals (locked, bad keys...) are answers, counted in the metrics.
			s.cfg.Log.Error(err, "command failed", "command", name, "connection", w.st.id)
		}
	}
	if s.cfg.Observer != nil {
		s.cfg.Observer.Command(name, took, kind)
	}
}

// quoteArgs quotes the first arguments of an unknown command for its error, as
// Redis does.
func quoteArgs(args []string) string {
	const most = 3
	var b strings.Builder
	for i, a := range args {
		if i == most {
			b.WriteString("...")
			break
		}
		if len(a) > 64 {
			a = a[:64] + "..."
		}
		b.WriteString("'" + a + "' ")
	}
	return strings.TrimSpace(b.String())
}

// checkPassword compares credentials in constant time.
func (s *Server) checkPassword(user, pass string) error {
	okUser := subtle.ConstantTimeCompare([]byte(user), []byte(s.cfg.Username)) == 1
	okPass := subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.Password)) == 1
	if !okUser || !okPass {
		return &Error{Code: CodeWrongPass, Kind: KindAuth, Msg: "invalid username-password pair or user is disabled."}
	}
	return nil
}

// hello is HELLO [protover [AUTH username password] [SETNAME clientname]], the first
// command of every go-redis v9 connection (protocol 3 by default). The reply is the
// server's description, in the protocol chosen.
func (s *Server) hello(_ context.Context, w writer, args []string) error {
	protocol := w.st.protocol
	if len(args) > 0 {
		v, err := strconv.Atoi(args[0])
		if err != nil {
			return Errorf(KindSyntax, "Protocol version is not an integer or out of range")
		}
		if v != 2 && v != 3 {
			return &Error{Code: CodeNoProto, Kind: KindSyntax, Msg: "unsupported protocol version"}
		}
		protocol = v
		args = args[1:]
	}
	authed, name := w.st.authed, w.st.name
	for len(args) > 0 {
		switch opt := strings.ToLower(args[0]); {
		case opt == "auth" && len(args) >= 3:
			if s.cfg.Password == "" {
				// Redis accepts any credentials for a default user without a
				// password; so does the gateway.
				authed = true
			} else if err := s.checkPassword(args[1], args[2]); err != nil {
				return err
			} else {
				authed = true
			}
			args = args[3:]
		case opt == "setname" && len(args) >= 2:
			name = args[1]
			args = args[2:]
		default:
			return Errorf(KindSyntax, "syntax error in HELLO option '%s'", args[0])
		}
	}
	if !authed {
		return &Error{Code: CodeNoAuth, Kind: KindAuth, Msg: "HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"}
	}
	w.st.protocol, w.st.authed, w.st.name = protocol, authed, name
	w.mapHeader(7)
	w.WriteBulkString("server")
	w.WriteBulkString(serverName)
	w.WriteBulkString("version")
	w.WriteBulkString(s.cfg.Version)
	w.WriteBulkString("proto")
	w.WriteInt(protocol)
	w.WriteBulkString("id")
	w.WriteInt64(w.st.id)
	w.WriteBulkString("mode")
	w.WriteBulkString("standalone")
	w.WriteBulkString("role")
	w.WriteBulkString("master")
	w.WriteBulkString("modules")
	w.WriteArray(0)
	return nil
}

// auth is AUTH [username] password, which go-redis sends when HELLO failed.
func (s *Server) auth(_ context.Context, w writer, args []string) error {
	if s.cfg.Password == "" {
		return Errorf(KindAuth, "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	}
	user, pass := "default", args[0]
	if len(args) == 2 {
		user, pass = args[0], args[1]
	}
	if err := s.checkPassword(user, pass); err != nil {
		return err
	}
	w.st.authed = true
	w.WriteString("OK")
	return nil
}

// quit answers OK and closes the connection. A failing close has nothing left to
// answer to: the reply is written, and a second one would be out of step.
func (s *Server) quit(_ context.Context, w writer, _ []string) error {
	w.WriteString("OK")
	if err := w.Close(); err != nil {
		s.cfg.Log.V(1).Info("closing a connection after QUIT", "error", err.Error())
	}
	return nil
}

func (s *Server) ping(_ context.Context, w writer, args []string) error {
	if len(args) == 1 {
		w.WriteBulkString(args[0])
		return nil
	}
	w.WriteString("PONG")
	return nil
}

// selectDB is SELECT index. The gateway has one key space; it answers to the one
// database index it is configured with, so that an Atlantis with another
// --redis-db fails at start-up instead of sharing keys it meant to keep apart.
func (s *Server) selectDB(_ context.Context, w writer, args []string) error {
	db, err := strconv.Atoi(args[0])
	if err != nil {
		return Errorf(KindSyntax, "value is not an integer or out of range")
	}
	if db != s.cfg.DB {
		return Errorf(KindSyntax, "DB index %d: this gateway serves only DB %d (its --redis-db flag); give Atlantis the same --redis-db", db, s.cfg.DB)
	}
	w.st.selected = true
	w.WriteString("OK")
	return nil
}

// client is CLIENT SETINFO, SETNAME and GETNAME, which go-redis sends while it sets
// up a connection. Other subcommands (such as go-redis's CLIENT MAINT_NOTIFICATIONS,
// which it turns off by itself on an error) get an error naming them.
func (s *Server) client(_ context.Context, w writer, args []string) error {
	sub := strings.ToLower(args[0])
	switch {
	case sub == "setinfo" && len(args) == 3:
		switch strings.ToLower(args[1]) {
		case "lib-name":
			w.st.libName = args[2]
		case "lib-ver":
			w.st.libVer = args[2]
		default:
			return Errorf(KindSyntax, "Unrecognized option '%s' of CLIENT SETINFO", args[1])
		}
	case sub == "setname" && len(args) == 2:
		w.st.name = args[1]
	case sub == "getname" && len(args) == 1:
		if w.st.name == "" {
			w.null()
		} else {
			w.WriteBulkString(w.st.name)
		}
		return nil
	default:
		return Errorf(KindUnknownCommand, "unknown subcommand or wrong number of arguments for 'CLIENT %s'; this gateway serves CLIENT SETINFO, SETNAME and GETNAME", args[0])
	}
	w.WriteString("OK")
	return nil
}

func (s *Server) get(ctx context.Context, w writer, args []string) error {
	v, found, err := s.backend.Get(ctx, args[0])
	if err == nil {
		w.bulkOrNull(v, found)
	}
	return err
}

// set is SET key value. Atlantis never sends SET's options (NX, XX, EX, PX, GET,
// KEEPTTL...), and a lock key's SET is an atomic grant anyway, so an option is
// refused by name rather than half-honoured.
func (s *Server) set(ctx context.Context, w writer, args []string) error {
	if len(args) > 2 {
		return Errorf(KindSyntax, "SET option '%s' is not supported by this gateway: Atlantis's Redis backend never sends SET options, and a SET of a lock key is already an atomic grant", args[2])
	}
	if err := s.backend.Set(ctx, args[0], []byte(args[1])); err != nil {
		return err
	}
	w.WriteString("OK")
	return nil
}

func (s *Server) del(ctx context.Context, w writer, args []string) error {
	n := 0
	for _, key := range args {
		deleted, err := s.backend.Del(ctx, key)
		if err != nil {
			return err
		}
		if deleted {
			n++
		}
	}
	w.WriteInt(n)
	return nil
}

// scan is SCAN cursor [MATCH pattern] [COUNT count]. The gateway answers every
// matching key in the first batch with the final cursor 0, which SCAN's contract
// allows (COUNT is a hint); a cursor other than 0 was never handed out.
func (s *Server) scan(ctx context.Context, w writer, args []string) error {
	if args[0] != "0" {
		return Errorf(KindSyntax, "SCAN cursor '%s' was never returned by this gateway: it answers every key in the first batch with cursor 0", args[0])
	}
	pattern := ""
	for rest := args[1:]; len(rest) > 0; rest = rest[2:] {
		if len(rest) < 2 {
			return Errorf(KindSyntax, "syntax error in SCAN option '%s'", rest[0])
		}
		switch strings.ToLower(rest[0]) {
		case "match":
			pattern = rest[1]
		case "count":
			if n, err := strconv.Atoi(rest[1]); err != nil || n < 1 {
				return Errorf(KindSyntax, "SCAN COUNT '%s' is not a positive integer", rest[1])
			}
		default:
			return Errorf(KindSyntax, "SCAN option '%s' is not supported by this gateway (MATCH and COUNT are)", rest[0])
		}
	}
	keys, err := s.backend.Keys(ctx, pattern)
	if err != nil {
		return err
	}
	w.WriteArray(2)
	w.WriteBulkString("0")
	w.WriteArray(len(keys))
	for _, k := range keys {
		w.WriteBulkString(k)
	}
	return nil
}

// eval is EVAL script numkeys [key ...] [arg ...].
func (s *Server) eval(ctx context.Context, w writer, args []string) error {
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 {
		return Errorf(KindSyntax, "value is not an integer or out of range")
	}
	if n > len(args)-2 {
		return Errorf(KindSyntax, "Number of keys can't be greater than number of args")
	}
	v, found, err := s.backend.Eval(ctx, args[0], args[2:2+n], args[2+n:])
	if err == nil {
		w.bulkOrNull(v, found)
	}
	return err
}
