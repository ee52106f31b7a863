package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"
)

// Notice is what the webhook gets of a new request: who asks for what,
// and where to approve it. It holds no argument and no argument hash, so
// that a chat channel or a ticket system learns nothing of the call's
// data.
type Notice struct {
	ID        string    `json:"id"`
	Caller    string    `json:"caller"`
	Connector string    `json:"connector"`
	Tool      string    `json:"tool"`
	URL       string    `json:"url"`
	Expires   time.Time `json:"expires"`
}

// webhookTimeout bounds one notice's delivery.
const webhookTimeout = 5 * time.Second

// maxInFlight bounds the notices on their way at once: beyond, a notice
// is dropped (and logged) rather than queued, so that a slow webhook
// never holds memory or a call.
const maxInFlight = 16

// Webhook posts a Notice of each new request to a URL, best effort: from
// a goroutine of its own, with a timeout, never blocking the call that
// asked.
type Webhook struct {
	url    string
	page   func(id string) string
	client *http.Client
	logger *zap.Logger
	slots  chan struct{}
}

// NewWebhook returns a Webhook posting to target, which must be an http
// or https URL; page gives a request's approval page. A nil client means
// one of the Webhook's own with webhookTimeout.
func NewWebhook(target string, page func(id string) string, client *http.Client, logger *zap.Logger) (*Webhook, error) {
	if err := CheckWebhookURL(target); err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{Timeout: webhookTimeout}
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Webhook{url: target, page: page, client: client, logger: logger, slots: make(chan struct{}, maxInFlight)}, nil
}

// CheckWebhookURL reports whether s is an absolute http or https URL.
func CheckWebhookURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("approval_webhook %q: want an http:// or https:// URL", s)
	}
	return nil
}

// Send posts r's notice in the background; it is Options.OnRequest.
func (w *Webhook) Send(r Request) {
	select {
	case w.slots <- struct{}{}:
	default:
		w.logger.Warn("approval webhook busy; notice dropped", zap.String("approval", r.ID))
		return
	}
	go func() {
		defer func() { <-w.slots }()
		n := Notice{ID: r.ID, Caller: r.Caller, Connector: r.Connector, Tool: r.Tool, URL: w.page(r.ID), Expires: r.Expires}
		if err := w.post(n); err != nil {
			w.logger.Warn("approval webhook failed", zap.String("approval", r.ID), zap.Error(err))
		}
	}()
}

// post delivers one notice.
func (w *Webhook) post(n Notice) error {
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if ue, ok := errors.AsType[*url.Error](err); ok {
		// The URL may hold a secret (many webhooks carry their token in
		// the path): the error says what failed, not where.
		return ue.Err
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
