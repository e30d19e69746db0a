package resp_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/keyspace"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/internal/resp"
	"github.com/runatlantis/atlantis-lock-operator/cmd/redis-gateway/test/testcert"
)

// memory is a Backend in a map, with a gate that can hold Set calls.
type memory struct {
	mu   sync.Mutex
	data map[string][]byte
	// hold, when not nil, makes Set wait until it is closed, after signalling
	// entered.
	hold, entered chan struct{}
}

func newMemory() *memory { return &memory{data: map[string][]byte{}} }

func (m *memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.data[key]
	return v, ok, nil
}

func (m *memory) Set(_ context.Context, key string, value []byte) error {
	if m.hold != nil {
		close(m.entered)
		<-m.hold
	}
	if key == "locked" {
		return resp.Locked("key '%s' is held by pull #7\nsince yesterday", key)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[key] = value
	return nil
}

func (m *memory) Del(_ context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.data[key]
	delete(m.data, key)
	return ok, nil
}

func (m *memory) Keys(_ context.Context, pattern string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for k := range m.data {
		if keyspace.Match(pattern, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

func (m *memory) Eval(_ context.Context, script string, keys, args []string) ([]byte, bool, error) {
	if script != "return KEYS[1]" {
		return nil, false, errors.New("unknown script")
	}
	return []byte(keys[0] + "=" + strings.Join(args, ",")), true, nil
}

// recorder is an Observer that keeps every command's name and error kind.
type recorder struct {
	mu       sync.Mutex
	commands []string
	conns    int
}

func (r *recorder) Command(name string, _ time.Duration, errKind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if errKind != "" {
		name += ":" + errKind
	}
	r.commands = append(r.commands, name)
}

func (r *recorder) Connections(delta int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns += delta
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.commands)
}

// serve runs a server over b with cfg on loopback (TLS when tlsCfg is not nil) until
// the test ends, and returns its address.
func serve(t *testing.T, b resp.Backend, cfg resp.Config, tlsCfg *tls.Config) (*resp.Server, string) {
	t.Helper()
	cfg.Log = logr.Discard()
	s := resp.New(b, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// client is a go-redis v9 client as Atlantis's redis.NewWithConfig builds one.
func client(t *testing.T, opt *redis.Options) *redis.Client {
	t.Helper()
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestHandshakeAsGoRedisMakesIt(t *testing.T) {
	for _, tc := range []struct {
		name     string
		protocol int
		password string
		db       int
		want     []string
	}{
		// go-redis v9.17's default: HELLO 3; CLIENT MAINT_NOTIFICATIONS ON
		// (refused: the gateway sends no maintenance push notifications, and
		// go-redis's "auto" mode turns them off on the error); CLIENT SETINFO
		// LIB-NAME and LIB-VER (pipelined); then the command.
		{name: "RESP3", protocol: 3, want: []string{"hello", "client:unknown_command", "client", "client", "ping"}},
		// RESP2 has no push notifications, so go-redis does not ask for them.
		{name: "RESP2", protocol: 2, want: []string{"hello", "client", "client", "ping"}},
		// With a password, HELLO carries AUTH default <password>; with a DB, SELECT follows.
		{name: "password and DB", protocol: 3, password: "s3cret", db: 2, want: []string{"hello", "select", "client:unknown_command", "client", "client", "ping"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			_, addr := serve(t, newMemory(), resp.Config{Password: tc.password, DB: tc.db, Observer: rec, Version: "test"}, nil)
			c := client(t, &redis.Options{Addr: addr, Protocol: tc.protocol, Password: tc.password, DB: tc.db})
			if err := c.Ping(context.Background()).Err(); err != nil {
				t.Fatalf("PING: %v", err)
			}
			if diff := cmp.Diff(tc.want, rec.seen()); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
			// GET of a missing key is redis.Nil in either protocol.
			if err := c.Get(context.Background(), "none").Err(); !errors.Is(err, redis.Nil) {
				t.Errorf("GET of a missing key: %v, want redis.Nil", err)
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	_, addr := serve(t, newMemory(), resp.Config{Password: "s3cret"}, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name, user, password, want string
	}{
		{"no password", "", "", "NOAUTH Authentication required."},
		{"wrong password", "", "wrong", "WRONGPASS invalid username-password pair or user is disabled."},
		{"wrong user", "bob", "s3cret", "WRONGPASS invalid username-password pair or user is disabled."},
		{"right", "", "s3cret", ""},
		{"right with the default user named", "default", "s3cret", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client(t, &redis.Options{Addr: addr, Username: tc.user, Password: tc.password, MaxRetries: -1})
			err := c.Ping(ctx).Err()
			if got := errText(err); !strings.Contains(got, tc.want) || (tc.want == "") != (err == nil) {
				t.Errorf("PING: %q, want an error containing %q", got, tc.want)
			}
		})
	}
	t.Run("AUTH command after HELLO 2 without credentials", func(t *testing.T) {
		c := client(t, &redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, PoolSize: 1})
		// The handshake's HELLO fails with NOAUTH, which go-redis takes as a
		// server without HELLO; it goes on, and commands need AUTH.
		if err := c.Do(ctx, "AUTH", "wrong").Err(); !strings.HasPrefix(errText(err), "WRONGPASS") {
			t.Errorf("AUTH wrong: %v", err)
		}
		if err := c.Do(ctx, "AUTH", "s3cret").Err(); err != nil {
			t.Errorf("AUTH right: %v", err)
		}
		if err := c.Ping(ctx).Err(); err != nil {
			t.Errorf("PING after AUTH: %v", err)
		}
	})
}

func TestRefusals(t *testing.T) {
	rec := &recorder{}
	_, addr := serve(t, newMemory(), resp.Config{Observer: rec}, nil)
	ctx := context.Background()
	c := client(t, &redis.Options{Addr: addr, MaxRetries: -1})
	for _, tc := range []struct {
		name string
		args []any
		want string
	}{
		{"unknown command", []any{"FLUSHALL", "ASYNC"}, "ERR unknown command 'flushall', with args beginning with: 'ASYNC'"},
		{"SET option", []any{"SET", "k", "v", "NX"}, "ERR SET option 'NX' is not supported"},
		{"SET EX", []any{"SET", "k", "v", "EX", "10"}, "ERR SET option 'EX' is not supported"},
		{"SCAN cursor", []any{"SCAN", "17"}, "ERR SCAN cursor '17' was never returned"},
		{"SCAN TYPE", []any{"SCAN", "0", "TYPE", "hash"}, "ERR SCAN option 'TYPE' is not supported"},
		{"CLIENT subcommand", []any{"CLIENT", "KILL", "ID", "1"}, "ERR unknown subcommand or wrong number of arguments for 'CLIENT KILL'"},
		{"SELECT another DB", []any{"SELECT", "3"}, "ERR DB index 3: this gateway serves only DB 0"},
		{"wrong arity", []any{"GET"}, "ERR wrong number of arguments for 'get' command"},
		{"HELLO 4", []any{"HELLO", "4"}, "NOPROTO unsupported protocol version"},
		{"EVAL keys", []any{"EVAL", "return 1", "3", "a"}, "ERR Number of keys can't be greater than number of args"},
		{"backend error", []any{"EVAL", "return 2", "0"}, "ERR unknown script"},
		{"multi-line error kept on one line", []any{"SET", "locked", "v"}, "LOCKED key 'locked' is held by pull #7; since yesterday"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Do(ctx, tc.args...).Err()
			if got := errText(err); !strings.HasPrefix(got, tc.want) {
				t.Errorf("%v: %q, want an error beginning %q", tc.args, got, tc.want)
			}
		})
	}
	// The connection still works after every refusal.
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := c.Get(ctx, "k").Val(); got != "v" {
		t.Errorf("GET k = %q after the refusals", got)
	}
	seen := strings.Join(rec.seen(), " ")
	for _, want := range []string{"unknown:unknown_command", "set:syntax", "scan:syntax", "client:unknown_command", "set:locked", "eval:backend"} {
		if !strings.Contains(seen, want) {
			t.Errorf("the observer saw no %s: %s", want, seen)
		}
	}
}

// TestDatabaseIndex: a gateway of DB 3 serves data commands only after SELECT 3,
// since a connection starts on DB 0.
func TestDatabaseIndex(t *testing.T) {
	_, addr := serve(t, newMemory(), resp.Config{DB: 3}, nil)
	ctx := context.Background()
	unselected := client(t, &redis.Options{Addr: addr, MaxRetries: -1})
	if err := unselected.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING needs no database: %v", err)
	}
	want := "ERR this gateway serves only DB 3 (its --redis-db flag), and this connection is on DB 0: give Atlantis --redis-db=3"
	if err := unselected.Get(ctx, "k").Err(); errText(err) != want {
		t.Errorf("GET on DB 0: %v, want %q", err, want)
	}
	selected := client(t, &redis.Options{Addr: addr, DB: 3})
	if err := selected.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Errorf("SET after SELECT 3: %v", err)
	}
}

func TestDataCommands(t *testing.T) {
	m := newMemory()
	_, addr := serve(t, m, resp.Config{}, nil)
	ctx := context.Background()
	c := client(t, &redis.Options{Addr: addr})
	for _, k := range []string{"pr/a/b/./default/", "pr/a/b2/./default/", "github.com::a/b::1"} {
		if err := c.Set(ctx, k, "value of "+k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Atlantis's SCAN iterator, with COUNT 0 (not sent) and a MATCH.
	var keys []string
	iter := c.Scan(ctx, 0, "pr/a/b*", 0).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"pr/a/b/./default/", "pr/a/b2/./default/"}, keys); diff != "" {
		t.Errorf("SCAN pr/a/b* (-want +got):\n%s", diff)
	}
	if n, err := c.Del(ctx, "pr/a/b/./default/", "missing", "github.com::a/b::1").Result(); err != nil || n != 2 {
		t.Errorf("DEL of two keys and a missing one = %d, %v; want 2", n, err)
	}
	v, err := c.Eval(ctx, "return KEYS[1]", []string{"k1"}, 42, "x").Result()
	if err != nil || v != "k1=42,x" {
		t.Errorf("EVAL = %v, %v", v, err)
	}
	if got, err := c.Do(ctx, "PING", "hello").Result(); err != nil || got != "hello" {
		t.Errorf("PING hello = %v, %v", got, err)
	}
	if err := c.Do(ctx, "CLIENT", "SETNAME", "atlantis").Err(); err != nil {
		t.Fatal(err)
	}
}

// TestOneReplyPerCommand sends every command the server knows, and some it does not,
// with zero to four arguments of several kinds, each followed by a PING on the same
// connection: whatever the command answers (a value or an error), it must answer
// exactly once, or the PING's reply would be out of step.
func TestOneReplyPerCommand(t *testing.T) {
	_, addr := serve(t, newMemory(), resp.Config{DB: 0}, nil)
	ctx := context.Background()
	c := client(t, &redis.Options{Addr: addr, PoolSize: 1, MaxRetries: -1, Protocol: 3})
	names := []string{"hello", "auth", "ping", "select", "client", "get", "set", "del", "scan", "eval", "keys", "multi"}
	values := []string{"0", "3", "-1", "x", "pr/a/b/./default/", "MATCH", "COUNT", "SETINFO", "LIB-NAME", "return KEYS[1]", ""}
	for _, name := range names {
		for n := range 5 {
			for first := range values {
				args := []any{name}
				for i := range n {
					args = append(args, values[(first+i*3)%len(values)])
				}
				_ = c.Do(ctx, args...).Err() // any answer, value or error
				if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
					t.Fatalf("after %q: PING answered %q, %v: the command did not answer exactly once", args, got, err)
				}
			}
		}
	}
}

func TestTLS(t *testing.T) {
	cert, pool := testcert.New(t)
	_, addr := serve(t, newMemory(), resp.Config{}, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}})
	ctx := context.Background()
	// As Atlantis with --redis-tls-enabled (and the gateway's CA trusted).
	c := client(t, &redis.Options{Addr: addr, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: "localhost"}})
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING over TLS: %v", err)
	}
	plain := client(t, &redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Error("PING without TLS to the TLS listener succeeded")
	}
}

func TestShutdownDrains(t *testing.T) {
	m := newMemory()
	m.hold, m.entered = make(chan struct{}), make(chan struct{})
	s, addr := serve(t, m, resp.Config{}, nil)
	ctx := context.Background()
	busy := client(t, &redis.Options{Addr: addr, MaxRetries: -1})
	other := client(t, &redis.Options{Addr: addr, MaxRetries: -1})
	if err := other.Ping(ctx).Err(); err != nil { // connect before the shutdown
		t.Fatal(err)
	}
	setDone := make(chan error, 1)
	go func() { setDone <- busy.Set(ctx, "k", "v", 0).Err() }()
	<-m.entered
	shutdownDone := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		shutdownDone <- s.Shutdown(sctx)
	}()
	// Once draining, new commands are turned away with TRYAGAIN. Wait until the
	// shutdown has begun: PING answers PONG until then.
	for {
		err := other.Ping(ctx).Err()
		if err != nil {
			if !strings.HasPrefix(err.Error(), "TRYAGAIN") {
				t.Fatalf("PING while draining: %v, want TRYAGAIN", err)
			}
			break
		}
	}
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned (%v) while a SET was in flight", err)
	default:
	}
	close(m.hold)
	if err := <-setDone; err != nil {
		t.Errorf("the SET in flight: %v, want OK", err)
	}
	if err := <-shutdownDone; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if v, ok, _ := m.Get(ctx, "k"); !ok || string(v) != "v" {
		t.Errorf("the SET in flight did not reach the backend")
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
