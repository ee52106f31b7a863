package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/store"
)

// pgChannel is the one PostgreSQL channel that carries every notice, each
// as its store channel, a space and its payload (a store channel has no
// space: store.CheckNotice). One channel, LISTENed once per instance,
// needs no LISTEN or UNLISTEN per subscription, and puts no caller's name
// in SQL text: channel and payload travel as parameters of pg_notify.
const pgChannel = "mcpgate_store"

// The listener's reconnection backoff: quick after a blip, at most a few
// seconds apart while the database is down.
const (
	retryFirst = 100 * time.Millisecond
	retryMax   = 5 * time.Second
)

// subscribeWait bounds how long Subscribe waits for a listener that is
// reconnecting: a subscription can only be in place once it listens.
const subscribeWait = 15 * time.Second

// Notify sends payload to every subscriber of channel in every instance,
// this one's included (its listener hears it like the others'). PostgreSQL
// delivers it once the statement commits, to the sessions listening then.
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	if err := store.CheckNotice(channel, payload); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", pgChannel, channel+" "+payload)
	return s.wrap("notifying", channel, err)
}

// Subscribe calls fn with each notice on channel until ctx ends or the
// store closes. It returns once the listener listens, so that a notice
// sent after it returns is heard; it fails if the listener cannot
// reconnect within subscribeWait. The store's hub delivers in order, on
// one goroutine per subscription.
func (s *Store) Subscribe(ctx context.Context, channel string, fn func(payload string)) error {
	if err := store.CheckNotice(channel, ""); err != nil {
		return err
	}
	sub, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.closing, cancel)
	context.AfterFunc(sub, func() { stop() })
	if err := s.hub.Subscribe(sub, channel, fn); err != nil {
		cancel()
		return err
	}
	if err := s.listener.wait(sub); err != nil {
		cancel()
		return fmt.Errorf("store/postgres: subscribing to %q: %w", channel, err)
	}
	return nil
}

// listener holds the one connection that LISTENs, and passes what it
// hears to the store's hub. When the connection breaks it reconnects;
// notices sent in between are lost, which the Notifier contract allows.
type listener struct {
	config *pgx.ConnConfig
	store  *Store

	mu        sync.Mutex
	conn      *pgx.Conn     // nil while reconnecting; only run uses it
	listening chan struct{} // closed while conn listens

	pid atomic.Uint32 // the listening session's backend, for tests
}

// listen connects the listener, so that Open fails on a database it
// cannot listen to.
func listen(ctx context.Context, config *pgx.ConnConfig, s *Store) (*listener, error) {
	l := &listener{config: config.Copy(), store: s, listening: make(chan struct{})}
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("store/postgres: listening for notices: %w", err)
	}
	l.listen(conn)
	return l, nil
}

// connect opens a connection and LISTENs on it.
func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.config)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{pgChannel}.Sanitize()); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}

// listen makes conn the listening connection.
func (l *listener) listen(conn *pgx.Conn) {
	l.pid.Store(conn.PgConn().PID())
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conn = conn
	close(l.listening)
}

// lost drops the broken connection: Subscribe waits until the next.
func (l *listener) lost() {
	l.mu.Lock()
	defer l.mu.Unlock()
	// A broken connection's goodbye may hang on the network: bounded.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.conn.Close(ctx)
	l.conn = nil
	l.listening = make(chan struct{})
}

// wait returns once the listener listens, or an error if ctx ends or
// subscribeWait passes first.
func (l *listener) wait(ctx context.Context) error {
	l.mu.Lock()
	listening := l.listening
	l.mu.Unlock()
	timer := time.NewTimer(subscribeWait)
	defer timer.Stop()
	select {
	case <-listening:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return errors.New("the connection that listens for notices is down")
	}
}

// run passes notices to the hub until ctx ends, reconnecting whenever
// the connection breaks.
func (l *listener) run(ctx context.Context) {
	for {
		l.hear(ctx)
		l.lost()
		if ctx.Err() != nil {
			return
		}
		if !l.reconnect(ctx) {
			return
		}
	}
}

// hear passes notices from the current connection until it breaks or
// ctx ends.
func (l *listener) hear(ctx context.Context) {
	for {
		n, err := l.conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() == nil {
				l.store.logger.Warn("the connection listening for notices broke; reconnecting, and notices sent meanwhile are lost",
					zap.Error(scrub(err, l.store.password)))
			}
			return
		}
		l.deliver(n.Payload)
	}
}

// deliver hands one notice to the hub. A payload that is not a store
// notice came from someone else using the channel, and is dropped.
func (l *listener) deliver(notice string) {
	channel, payload, ok := strings.Cut(notice, " ")
	if !ok || l.store.hub.Notify(context.Background(), channel, payload) != nil {
		l.store.logger.Debug("dropping a notice that no store sent", zap.Int("bytes", len(notice)))
	}
}

// reconnect retries with growing pauses until it listens again, reporting
// false if ctx ends first.
func (l *listener) reconnect(ctx context.Context) bool {
	pause := retryFirst
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
		conn, err := l.connect(ctx)
		if err == nil {
			l.listen(conn)
			l.store.logger.Info("listening for notices again")
			return true
		}
		l.store.logger.Warn("reconnecting to listen for notices", zap.Error(scrub(err, l.store.password)), zap.Duration("retry_in", min(2*pause, retryMax)))
		pause = min(2*pause, retryMax)
	}
}
