package mcpgate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/mcpgate/caddy-mcpgate/connectors"
	"github.com/mcpgate/caddy-mcpgate/gateway"
	"github.com/mcpgate/caddy-mcpgate/mcpmux"
	"github.com/mcpgate/caddy-mcpgate/oauthflow"
	"github.com/mcpgate/caddy-mcpgate/store"
	"github.com/mcpgate/caddy-mcpgate/store/postgres"
)

// storePool holds one open database per directory or PostgreSQL
// database, shared by every config generation that uses it: Badger locks
// its directory, so a reload that opened it again would fail, and a
// PostgreSQL pool is worth keeping. Caddy starts the new config before it
// cleans up the old one, so the handle passes from one generation to the
// next without ever closing. Badger's keys are absolute paths, so that two
// spellings of one directory are one entry; PostgreSQL's are a hash of
// the DSN, which may hold a password.
var storePool = caddy.NewUsagePool()

// database is what an open backend offers: every capability of a shared
// store, and Close.
type database interface {
	store.Shared
	Close() error
}

// openDB is a database in the pool, with the grant locks of every config
// generation that uses it, so that a reload never refreshes one grant
// twice. The pool closes it when the last config using it goes.
type openDB struct {
	database
	locks *oauthflow.Locks
}

// Destruct implements caddy.Destructor.
func (db openDB) Destruct() error { return db.Close() }

// vault is the store at run time: the database, its sealed view, the grant
// locks shared with other config generations, and the background work on
// them (rewrapping after a key rotation, retrying failed revocations),
// which stop ends and waits for. It opens at Start, never while
// provisioning, so that `caddy validate` works beside a running server
// that holds the database.
type vault struct {
	mu     sync.Mutex
	db     database
	sealed *store.Sealed
	ring   *store.Ring
	locks  *oauthflow.Locks
	path   string // the storePool key held, once open
	stop   context.CancelFunc
}

// provisionOAuth checks the OAuth half of the config: seal keys, redirect
// origins and storage. It opens nothing: `caddy validate` provisions in a
// second process while the server holds the database's lock.
func (a *App) provisionOAuth(repl *caddy.Replacer) error {
	for i, raw := range a.SealKeys {
		// ReplaceOrErr, so that an unset {env.*} is an error rather than
		// an empty key. The errors name the key's index and never its
		// value, nor ReplaceOrErr's error, which quotes the input.
		v, err := repl.ReplaceOrErr(raw, true, true)
		if err != nil {
			return fmt.Errorf("seal_keys[%d]: a placeholder is not set", i)
		}
		key, err := store.ParseKey(v)
		if err != nil {
			return fmt.Errorf("seal_keys[%d]: %v", i, err)
		}
		a.sealKeys = append(a.sealKeys, key)
	}
	// The ring refuses a duplicate key, or two whose ids collide; checked
	// here so that `caddy validate` says so, not the Start of a reload.
	if len(a.sealKeys) > 0 {
		if _, err := store.NewRing(a.sealKeys); err != nil {
			return err
		}
	}
	for _, origin := range a.AllowedRedirects {
		if err := checkOrigin(origin); err != nil {
			return err
		}
	}
	if err := a.provisionStorage(repl); err != nil {
		return err
	}
	// An egress proxy would resolve the authorization server's name
	// itself, past the gateway's checks of the addresses it dials
	// (discovered URLs are attacker-influenced: RFC 9728 §7.7, SSRF).
	if slices.ContainsFunc(a.Connectors, usesOAuth) && (os.Getenv("HTTPS_PROXY") != "" || os.Getenv("https_proxy") != "") {
		a.logger.Warn("OAuth requests to authorization servers ignore HTTPS_PROXY: they connect directly, " +
			"so that the gateway can refuse internal addresses itself")
	}
	return nil
}

// provisionStorage resolves where the records are kept: a Badger
// directory, or a PostgreSQL database that several instances share. It
// opens nothing: Start does.
func (a *App) provisionStorage(repl *caddy.Replacer) error {
	cfg := a.Storage
	if cfg == nil {
		cfg = new(StorageConfig)
	}
	switch cfg.Backend {
	case "", "badger":
		if cfg.DSN != "" {
			return errors.New("storage badger takes no dsn; a dsn is for storage postgres")
		}
		a.storePath = filepath.Join(caddy.AppDataDir(), "mcpgate")
		if cfg.Path == "" {
			return nil
		}
		p, err := repl.ReplaceOrErr(cfg.Path, true, true)
		if err != nil {
			return fmt.Errorf("storage path: a placeholder is not set")
		}
		// Absolute: the path keys storePool, and a relative one would
		// follow the working directory of whichever process reads it.
		if a.storePath, err = filepath.Abs(p); err != nil {
			return fmt.Errorf("storage path: %v", err)
		}
		return nil
	case "postgres":
		if cfg.Path != "" {
			return errors.New("storage postgres takes no path; it takes a dsn")
		}
		// The key ring never lives in the database, and instances that
		// generated a key each would not open each other's records.
		if len(a.sealKeys) == 0 {
			return errors.New("storage postgres needs seal_key: every instance sharing the database must seal with the same keys, given in the config (best as {env.*} or {file.*}), never stored in the database")
		}
		dsn, err := repl.ReplaceOrErr(cfg.DSN, true, true)
		if err != nil || dsn == "" {
			return errors.New("storage postgres: dsn is required, and a placeholder in it must be set")
		}
		a.storeDSN = dsn
		return nil
	}
	return fmt.Errorf("storage backend %q is not supported; use badger or postgres", cfg.Backend)
}

// usesOAuth reports whether a connector's config has it use OAuth.
func usesOAuth(cfg connectors.Config) bool { return cfg.OAuth() != nil }

// oauth returns the OAuth manager of the gateway serving now.
func (a *App) oauth() (*oauthflow.Manager, error) {
	if m := a.live.Current().Manager(); m != nil {
		return m, nil
	}
	return nil, errors.New("no connector uses OAuth")
}

// openVault opens the store, checks that the key ring opens what it holds,
// and starts the background work on it. It runs at Start, and opening a
// second time is a no-op.
func (a *App) openVault() error {
	a.vault.mu.Lock()
	defer a.vault.mu.Unlock()
	if a.vault.path != "" {
		return nil
	}
	ring, err := a.ring()
	if err != nil {
		return err
	}
	path, open := a.database()
	db, _, err := storePool.LoadOrNew(path, func() (caddy.Destructor, error) {
		d, err := open()
		return openDB{d, new(oauthflow.Locks)}, err
	})
	if err != nil {
		return err
	}
	sealed := store.Seal(db.(openDB).database, ring)
	sealed.WarnAt(store.WrapLimit, func(id string, n uint64) {
		a.logger.Warn("a seal key nears the AES-GCM usage bound: put a new seal_key first, and the records move onto it",
			zap.String("key_id", id), zap.Uint64("wraps", n))
	})
	ctx, cancel := context.WithCancel(context.Background())
	if err := a.readyVault(ctx, db.(openDB).database, sealed); err != nil {
		// Give back this generation's use, so that a config refused here
		// leaves the database to the one still serving, or closes it.
		cancel()
		_, _ = storePool.Delete(path)
		return err
	}
	a.vault.db, a.vault.sealed, a.vault.ring, a.vault.locks = db.(openDB).database, sealed, ring, db.(openDB).locks
	a.useVault(sealed, ring)
	a.vault.path = path
	a.attachAudit(a.vault.db, ring)
	a.vault.stop = a.startBackground(ctx, cancel, sealed, ring)
	return nil
}

// useVault has the generations built from now on use the store: they get
// an OAuth manager, and every key comes from the ring, each for one
// purpose (HKDF info), so that a tag made for one use never verifies for
// another: a connect link's tag is no OAuth state. Agent sessions get
// sealed ids that any instance sharing the store can serve, and their
// ends are shared through it.
func (a *App) useVault(sealed *store.Sealed, ring *store.Ring) {
	a.gw.OAuth.Store, a.gw.OAuth.Locks, a.gw.OAuth.StateKey = sealed, a.vault.locks, ring.Derive("oauth state")
	a.gw.Mux.StateKey, a.gw.ConnectKey = ring.Derive("request state"), ring.Derive("connect link")
	a.gw.Mux.SessionKey, a.gw.Mux.Ended = ring.Derive("session id"), gateway.SessionEnds{Store: sealed}
}

// startBackground starts the work on the open store that lasts until ctx
// ends: hearing the other instances that share it, rewrapping records
// under the first seal key, retrying revocations and flushing the last
// uses. It returns what stops it: cancel, then a wait for that work and
// for the consent notices on their way, so that closeVault never gives
// the database back to the pool, which may close it, under a write.
func (a *App) startBackground(ctx context.Context, cancel context.CancelFunc, sealed *store.Sealed, ring *store.Ring) (stop func()) {
	a.followPeers(ctx, sealed, ring)
	var work sync.WaitGroup
	work.Go(func() {
		if len(a.sealKeys) > 1 {
			a.rewrap(ctx, sealed)
		}
		a.retryRevocations(ctx)
	})
	work.Go(func() { a.flushUsage(ctx, a.gw.Usage, sealed) })
	return func() {
		cancel()
		work.Wait()
		a.consents.Stop()
		a.lists.Stop()
	}
}

// followPeers has this instance hear, until ctx ends, the sessions the
// other instances sharing the store end and, on a shared database, the
// list changes and consents they see, and tell them its own. A failure is
// logged: the instance serves on, hearing less.
func (a *App) followPeers(ctx context.Context, sealed *store.Sealed, ring *store.Ring) {
	if err := (gateway.SessionEnds{Store: sealed}).Follow(ctx, a.sessions); err != nil {
		a.logger.Error("following the sessions other instances end", zap.Error(err))
	}
	if a.storeDSN == "" {
		return
	}
	news := &gateway.ListNews{Store: sealed, Instance: rand.Text(), Logger: a.logger}
	a.lists, a.gw.Mux.OnListChanged = news, news.Tell
	if err := news.Follow(ctx, func() *mcpmux.Mux { return a.live.Current().Mux() }); err != nil {
		a.logger.Error("following the list changes other instances hear of", zap.Error(err))
	}
	if err := a.consents.Follow(ctx, sealed, ring.Derive("consent notice"), news.Instance); err != nil {
		a.logger.Error("following the consents other instances see", zap.Error(err))
	}
}

// usageFlush is how often the connectors' last uses go to the store: how
// stale another instance's view of them may be.
const usageFlush = 30 * time.Second

// flushUsage writes the connectors' last uses to s every usageFlush, and
// once more when ctx ends, before the store is given back, so that a
// reload or a stop loses none.
func (a *App) flushUsage(ctx context.Context, usage *connectors.Usage, s store.Store) {
	tick := time.NewTicker(usageFlush)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			a.logFlush(usage.Flush(ctx, s))
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			a.logFlush(usage.Flush(last, s))
			cancel()
			return
		}
	}
}

// logFlush logs a failed flush of the last uses; the next one retries.
func (a *App) logFlush(err error) {
	if err != nil {
		a.logger.Error("storing when connectors were last used", zap.Error(err))
	}
}

// database returns the storePool key of the configured database and how
// to open it.
func (a *App) database() (string, func() (database, error)) {
	logger := a.logger.Named("store")
	if a.storeDSN == "" {
		return a.storePath, func() (database, error) { return store.OpenBadger(a.storePath, logger) }
	}
	sum := sha256.Sum256([]byte(a.storeDSN))
	return "postgres " + hex.EncodeToString(sum[:]), func() (database, error) {
		ctx, cancel := context.WithTimeout(context.Background(), postgresOpenTimeout)
		defer cancel()
		return postgres.Open(ctx, a.storeDSN, logger)
	}
}

// postgresOpenTimeout bounds connecting to PostgreSQL and migrating its
// schema at start, which waits for another instance migrating at once.
const postgresOpenTimeout = time.Minute

// readyVault checks that the key ring opens what db holds, and seals the
// tool selections that an earlier version stored in the clear.
func (a *App) readyVault(ctx context.Context, db store.Store, sealed *store.Sealed) error {
	if err := sealed.Check(ctx); err != nil {
		return err
	}
	n, err := connectors.SealPlainSelections(ctx, db, sealed)
	if err != nil {
		return err
	}
	if n > 0 {
		a.logger.Info("sealed tool selections stored in the clear by an earlier version", zap.Int("sealed", n))
	}
	return nil
}

// rewrap moves every record onto the first seal key, so that the older
// keys can later leave the ring. A failure is logged, not returned: the
// records it left stay readable under their old key, and the next Start
// tries again.
func (a *App) rewrap(ctx context.Context, sealed *store.Sealed) {
	n, err := sealed.Rewrap(ctx)
	if err != nil && ctx.Err() == nil {
		a.logger.Error("rewrapping stored records under the first seal key", zap.Int("rewrapped", n), zap.Error(err))
		return
	}
	if n > 0 {
		a.logger.Info("rewrapped stored records under the first seal key", zap.Int("rewrapped", n))
	}
}

// revocationRetry is how often revocations that failed at disconnect are
// tried again.
const revocationRetry = time.Minute

// retryRevocations retries failed revocations until ctx ends, with the
// manager serving at the time. A token whose revocation failed is still
// live at the provider (RFC 7009 §2.2.1: on 503 the client must assume
// the token still exists), so the gateway keeps asking rather than
// forgetting it. The manager is looked up at each tick because a registry
// change replaces it.
func (a *App) retryRevocations(ctx context.Context) {
	tick := time.NewTicker(revocationRetry)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			m, err := a.oauth()
			if err != nil {
				continue
			}
			if _, err := m.RetryRevocations(ctx); err != nil && ctx.Err() == nil {
				a.logger.Error("retrying revocations", zap.Error(err))
			}
		}
	}
}

// ring returns the configured key ring, or one made of a key generated
// into Caddy's data directory on first run. That key lies beside the data
// it seals, so a copy of the directory takes both: it keeps a first run
// working, and the warning says so.
func (a *App) ring() (*store.Ring, error) {
	if len(a.sealKeys) > 0 {
		return store.NewRing(a.sealKeys)
	}
	path := filepath.Join(caddy.AppDataDir(), "mcpgate-seal.key")
	key, err := store.LoadOrCreateKey(path)
	if err != nil {
		return nil, err
	}
	a.logger.Warn("no seal_key is configured: sealing with a key generated into Caddy's data directory; "+
		"in production pass one with seal_key {env.*} or {file.*}", zap.String("key_file", path))
	return store.NewRing([][]byte{key})
}

// closeVault releases what openVault opened. The database closes only
// when the last config generation using it lets go: in a reload the new
// generation has already taken its use.
func (a *App) closeVault() {
	a.vault.mu.Lock()
	defer a.vault.mu.Unlock()
	if a.vault.stop != nil {
		a.vault.stop()
	}
	if a.vault.path != "" {
		_, _ = storePool.Delete(a.vault.path)
		a.vault.path = ""
	}
}
