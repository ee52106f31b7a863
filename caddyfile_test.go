package mcpgate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestCaddyfileAdapt adapts every golden file in testdata/caddyfile_adapt:
// a Caddyfile, a line of ten dashes, then the JSON it must adapt to, as in
// Caddy's own caddytest/integration/caddyfile_adapt.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, expected, ok := strings.Cut(string(data), "----------")
			if !ok {
				t.Fatal("no ---------- line between the Caddyfile and the JSON")
			}
			input = strings.TrimSpace(input) + "\n"
			if w, different := caddyfile.FormattingDifference(file, []byte(input)); different {
				t.Errorf("the Caddyfile is not formatted: %s:%d: %s", file, w.Line, w.Message)
			}
			if !caddytest.CompareAdapt(t, file, input, "caddyfile", strings.TrimSpace(expected)) {
				t.Error("adapted JSON differs from the golden JSON (diff on stdout)")
			}
		})
	}
}

// global wraps the lines of a global mcpgate block in a Caddyfile, so that
// the first line of body is line 3 of the file.
func global(body string) string {
	return "{\n\tmcpgate {\n" + body + "\n\t}\n}\n"
}

// canary stands for a secret in the error cases: no error may contain it.
const canary = "s3cr3t"

// TestCaddyfileErrors adapts bad Caddyfiles and checks that each error says
// what is wrong, names the file and line, and never echoes a secret.
func TestCaddyfileErrors(t *testing.T) {
	tests := []struct {
		name      string
		caddyfile string
		want      string
		line      int
	}{
		// global options
		{"unknown option", global("publicurl https://mcp.example.com"), `unrecognized mcpgate option "publicurl"`, 3},
		{"option argument", "{\n\tmcpgate on {\n\t}\n}\n", "wrong argument count", 2},
		{"second mcpgate block", "{\n\tmcpgate {\n\t}\n\tmcpgate {\n\t}\n}\n", "mcpgate is already configured", 4},
		{"duplicate public_url", global("public_url https://a.example.com\npublic_url https://b.example.com"), "public_url is already set", 4},
		{"public_url scheme", global("public_url ftp://mcp.example.com"), "scheme must be http or https", 3},
		{"public_url relative", global("public_url /mcp"), "scheme must be http or https", 3},
		{"public_url no host", global("public_url https:///mcp"), "has no host", 3},
		{"public_url query", global("public_url https://mcp.example.com/?a=b"), "must not have a query or a fragment", 3},
		{"public_url fragment", global("public_url https://mcp.example.com/#x"), "must not have a query or a fragment", 3},
		{"public_url credentials", global("public_url https://u:" + canary + "@mcp.example.com"), "must not have credentials", 3},
		{"public_url no argument", global("public_url"), "wrong argument count", 3},
		{"duplicate identity", global("identity {http.auth.user.id}\nidentity local"), "identity is already set", 4},
		{"identity two arguments", global("identity alice bob"), "wrong argument count", 3},
		{"identity empty", global(`identity ""`), "identity must not be empty", 3},
		{"groups two arguments", global("groups a b"), "wrong argument count", 3},
		{"duplicate groups", global("groups {a}\ngroups {b}"), "groups is already set", 4},
		{"duplicate tool_separator", global("tool_separator _\ntool_separator __"), "tool_separator is already set", 4},
		{"bad tool_separator", global("tool_separator -"), `tool_separator "-" must be _ or __`, 3},
		{"bad size", global("max_request_body lots"), `max_request_body "lots"`, 3},
		{"zero size", global("max_request_body 0"), "must be positive", 3},
		{"bad duration", global("list_cache_ttl soon"), `list_cache_ttl "soon"`, 3},
		{"negative duration", global("list_cache_ttl -5m"), "must be positive", 3},

		// connectors
		{"id uppercase", global("connector Notion {\nurl https://mcp.notion.com/mcp\n}"), `connector id "Notion" must match`, 3},
		{"id underscore", global("connector my_notion {\nurl https://mcp.notion.com/mcp\n}"), `connector id "my_notion" must match`, 3},
		{"id too long", global("connector " + strings.Repeat("a", 33) + " {\nurl https://mcp.notion.com/mcp\n}"), "at most 32", 3},
		{"id reserved", global("connector mcpgate {\nurl https://mcp.notion.com/mcp\n}"), "is reserved", 3},
		{"id missing", global("connector {\nurl https://mcp.notion.com/mcp\n}"), "wrong argument count", 3},
		{"id two arguments", global("connector a b {\nurl https://mcp.notion.com/mcp\n}"), "wrong argument count", 3},
		{"duplicate id", global("connector notion {\nurl https://a.example.com/mcp\n}\nconnector notion {\nurl https://b.example.com/mcp\n}"), `connector "notion" is already defined at Caddyfile:3`, 6},
		{"missing url", global("connector notion {\ntimeout 5s\n}"), `connector "notion": url is required`, 3},
		{"missing block", global("connector notion"), `connector "notion": url is required`, 3},
		{"duplicate url", global("connector notion {\nurl https://a.example.com/mcp\nurl https://b.example.com/mcp\n}"), "url is already set", 5},
		{"url scheme", global("connector notion {\nurl ftp://mcp.notion.com/mcp\n}"), "scheme must be http or https", 4},
		{"url no host", global("connector notion {\nurl mcp.notion.com/mcp\n}"), "scheme must be http or https", 4},
		{"url credentials", global("connector notion {\nurl https://u:" + canary + "@mcp.notion.com/mcp\n}"), "credentials belong in the auth line", 4},
		{"unknown connector subdirective", global("connector notion {\nurl https://mcp.notion.com/mcp\nheaders x\n}"), `unrecognized connector subdirective "headers"`, 5},
		{"bad timeout", global("connector notion {\nurl https://mcp.notion.com/mcp\ntimeout 5 s\n}"), "wrong argument count", 5},
		{"zero timeout", global("connector notion {\nurl https://mcp.notion.com/mcp\ntimeout 0s\n}"), `timeout "0s" must be positive`, 5},
		{"duplicate timeout", global("connector notion {\nurl https://mcp.notion.com/mcp\ntimeout 5s\ntimeout 6s\n}"), "timeout is already set", 6},
		{"disabled value", global("connector notion {\nurl https://mcp.notion.com/mcp\ndisabled yes\n}"), "wrong argument count", 5},
		{"disabled twice", global("connector notion {\nurl https://mcp.notion.com/mcp\ndisabled\ndisabled\n}"), "disabled is already set", 6},
		{"title empty", global("connector notion {\nurl https://mcp.notion.com/mcp\ntitle \"\"\n}"), "title must not be empty", 5},
		{"title twice", global("connector notion {\nurl https://mcp.notion.com/mcp\ntitle A\ntitle B\n}"), "title is already set", 6},
		{"description two values", global("connector notion {\nurl https://mcp.notion.com/mcp\ndescription Pages search\n}"), "wrong argument count", 5},
		{"oauth client_name long", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_name " + strings.Repeat("n", 129) + "\n}\n}"), "client_name must be at most 128 characters", 5},
		{"oauth client_name empty", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_name \"\"\n}\n}"), "client_name must not be empty", 6},

		// auth: every case carries the canary where a secret would be
		{"duplicate auth", global("connector c {\nurl https://c.example.com/mcp\nauth bearer {env.A}\nauth bearer " + canary + "\n}"), "auth is already set", 6},
		{"auth no type", global("connector c {\nurl https://c.example.com/mcp\nauth\n}"), "auth needs a type", 5},
		{"auth unknown type", global("connector c {\nurl https://c.example.com/mcp\nauth basic " + canary + "\n}"), `auth type "basic" must be bearer, header or oauth`, 5},
		{"auth lone token", global("connector c {\nurl https://c.example.com/mcp\nauth " + canary + "\n}"), "auth type must be bearer or header followed by the credential, or oauth", 5},
		{"auth token as type", global("connector c {\nurl https://c.example.com/mcp\nauth Bearer-" + canary + " x\n}"), "auth type must be bearer or header followed by the credential, or oauth", 5},
		{"bearer no token", global("connector c {\nurl https://c.example.com/mcp\nauth bearer\n}"), "auth bearer takes one value", 5},
		{"bearer two values", global("connector c {\nurl https://c.example.com/mcp\nauth bearer " + canary + " " + canary + "2\n}"), "auth bearer takes one value", 5},
		{"bearer token with space", global("connector c {\nurl https://c.example.com/mcp\nauth bearer \"" + canary + " x\"\n}"), "token has white space", 5},
		{"bearer empty token", global("connector c {\nurl https://c.example.com/mcp\nauth bearer \"\"\n}"), "token is empty", 5},
		// oauth, storage and seal keys
		{"oauth values on its line", global("connector c {\nurl https://c.example.com/mcp\nauth oauth " + canary + "\n}"), "auth oauth takes no values on its line", 5},
		{"oauth unknown option", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nscope read\n}\n}"), `unrecognized auth oauth subdirective "scope"`, 6},
		{"oauth bad registration", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nregistration magic\n}\n}"), `registration "magic" must be one of auto, static, cimd, dcr`, 6},
		{"oauth bad consent", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nconsent everyone\n}\n}"), `consent "everyone" must be one of per_user, shared`, 6},
		{"oauth duplicate consent", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nconsent shared\nconsent per_user\n}\n}"), "consent is already set", 7},
		{"oauth bad auth method", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_id a\nclient_secret " + canary + "\ntoken_auth_method client_secret_jwt\n}\n}"), `token_auth_method "client_secret_jwt" must be one of`, 8},
		{"oauth private_key_jwt without key", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_id a\ntoken_auth_method private_key_jwt\n}\n}"), "token_auth_method private_key_jwt needs client_key", 5},
		{"oauth private_key_jwt with secret", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_id a\nclient_key {file./k.pem}\nclient_secret " + canary + "\ntoken_auth_method private_key_jwt\n}\n}"), "client_secret is set, but token_auth_method is private_key_jwt", 5},
		{"oauth key and secret", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_id a\nclient_key {file./k.pem}\nclient_secret " + canary + "\n}\n}"), "client_secret and client_key are both set", 5},
		{"oauth key with basic", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_id a\nclient_key {file./k.pem}\ntoken_auth_method client_secret_basic\n}\n}"), "token_auth_method client_secret_basic needs client_secret", 5},
		{"oauth key without client", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_key {file./k.pem}\n}\n}"), "client_key needs client_id", 5},
		{"oauth unparsable key", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_id a\nclient_key " + canary + "\n}\n}"), "client_key holds no PEM private key", 5},
		{"oauth empty key", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_id a\nclient_key \"\"\n}\n}"), "client_key must not be empty", 7},
		{"oauth bad key id", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_id a\nclient_key {file./k.pem}\nclient_key_id \"a b\"\n}\n}"), "client_key_id must be at most 256 characters", 5},
		{"oauth static without client", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nregistration static\n}\n}"), "registration static needs client_id", 5},
		{"oauth secret without client", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_secret " + canary + "\n}\n}"), "client_secret and token_auth_method need client_id", 5},
		{"oauth none with secret", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_id a\nclient_secret " + canary + "\ntoken_auth_method none\n}\n}"), "client_secret is set, but token_auth_method is none", 5},
		{"oauth basic without secret", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_id a\ntoken_auth_method client_secret_post\n}\n}"), "token_auth_method client_secret_post needs client_secret", 5},
		{"oauth bad dpop", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\ndpop yes\n}\n}"), `dpop "yes" must be one of on, off`, 6},
		{"oauth dpop twice", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\ndpop on\ndpop off\n}\n}"), "dpop is already set", 7},
		{"oauth bad grant", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\ngrant password\n}\n}"), `grant "password" must be one of authorization_code, client_credentials`, 6},
		{"oauth client credentials without client", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\ngrant client_credentials\n}\n}"), "grant client_credentials needs a static client", 5},
		{"oauth client credentials public", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\ngrant client_credentials\nclient_id a\n}\n}"), "grant client_credentials needs the client to authenticate", 5},
		{"oauth client credentials per user", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\ngrant client_credentials\nconsent per_user\nclient_id a\nclient_secret " + canary + "\n}\n}"), "grant client_credentials needs consent shared", 5},
		{"oauth client credentials dcr", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\ngrant client_credentials\nregistration dcr\n}\n}"), "grant client_credentials needs a static client", 5},
		{"oauth dcr with client", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nregistration dcr\nclient_id a\n}\n}"), "client_id is set, but registration is dcr", 5},
		{"oauth empty secret", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nclient_id a\nclient_secret \"\"\n}\n}"), "client_secret must not be empty", 7},
		{"oauth relative endpoint", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\ntoken_endpoint /token\n}\n}"), `token_endpoint "/token" must be an absolute http or https URL`, 6},
		{"oauth javascript endpoint", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nauthorization_endpoint javascript:alert(1)\n}\n}"), "must be an absolute http or https URL", 6},
		{"oauth no scopes", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nscopes\n}\n}"), "wrong argument count", 6},
		{"oauth bad scope", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\nscopes \"a\\\\b\"\n}\n}"), "is not a valid scope", 6},
		{"insecure_loopback value", global("connector c {\nurl https://c.example.com/mcp\nauth oauth {\ninsecure_loopback yes\n}\n}"), "wrong argument count", 6},
		{"storage no backend", global("storage"), "storage needs a backend", 3},
		{"storage unknown backend", global("storage redis"), `storage backend "redis" is not supported`, 3},
		{"builtin_presets bad", global("builtin_presets maybe"), `builtin_presets "maybe" must be on or off`, 3},
		{"builtin_presets twice", global("builtin_presets off\nbuiltin_presets on"), "builtin_presets is already set", 4},
		{"storage postgres on its line", global("storage postgres postgres://u:" + canary + "@db/x"), "storage postgres takes its settings in a block", 3},
		{"storage postgres no dsn", global("storage postgres {\n}"), "storage postgres needs dsn", 3},
		{"storage postgres empty dsn", global("storage postgres {\ndsn \"\"\n}"), "dsn must not be empty", 4},
		{"storage postgres twice dsn", global("storage postgres {\ndsn {env.A}\ndsn {env.B}\n}"), "dsn is already set", 5},
		{"storage postgres unknown", global("storage postgres {\npath /x\n}"), `unrecognized storage postgres subdirective "path"`, 4},
		{"storage too many", global("storage badger /a /b"), "storage badger takes at most one value", 3},
		{"duplicate storage", global("storage badger\nstorage badger /x"), "storage is already set", 4},
		{"seal_key none", global("seal_key"), "seal_key takes one value", 3},
		{"seal_key not base64", global("seal_key " + canary + "!!"), "seal_key 1:", 3},
		{"seal_key short", global("seal_key QUJDREVGR0hJSktMTU5PUA=="), "seal_key 1:", 3},
		{"seal_key repeated", global("seal_key {env.K}\nseal_key {env.K}"), "seal_key 2 repeats seal_key 1", 4},
		{"allowed_redirects path", global("allowed_redirects https://app.example.com/cb"), "must be an origin", 3},
		{"allowed_redirects none", global("allowed_redirects"), "wrong argument count", 3},
		{"allowed_hosts none", global("allowed_hosts"), "wrong argument count", 3},
		{"allowed_hosts scheme", global("allowed_hosts https://mcp.example.com"), "must be a host name", 3},
		{"allowed_hosts port", global("allowed_hosts mcp.example.com:443"), "without a scheme or port", 3},
		{"allowed_hosts inner wildcard", global("allowed_hosts a.*.example.com"), "must be a host name", 3},
		{"allowed_hosts bare wildcard", global("allowed_hosts *"), "must be a host name", 3},
		{"allowed_hosts repeated", global("allowed_hosts a.example b.example a.example"), `"a.example" is listed twice`, 3},
		{"header one value", global("connector c {\nurl https://c.example.com/mcp\nauth header X-Api-Key\n}"), "auth header takes two values", 5},
		{"header three values", global("connector c {\nurl https://c.example.com/mcp\nauth header X-Api-Key " + canary + " " + canary + "\n}"), "auth header takes two values", 5},
		{"header bad name", global("connector c {\nurl https://c.example.com/mcp\nauth header \"X Key\" " + canary + "\n}"), `"X Key" is not a valid header name`, 5},
		{"header forbidden", global("connector c {\nurl https://c.example.com/mcp\nauth header Mcp-Session-Id " + canary + "\n}"), "does not let a credential set Mcp-Session-Id", 5},
		{"header value spaces", global("connector c {\nurl https://c.example.com/mcp\nauth header X-Api-Key \" " + canary + "\"\n}"), "surrounding white space", 5},

		// tools
		{"unknown tools subdirective", global("connector c {\nurl https://c.example.com/mcp\ntools {\ndeny search\n}\n}"), `unrecognized tools subdirective "deny"`, 6},
		{"tools argument", global("connector c {\nurl https://c.example.com/mcp\ntools all\n}"), "wrong argument count", 5},
		{"duplicate tools", global("connector c {\nurl https://c.example.com/mcp\ntools {\nallow a\n}\ntools {\nallow b\n}\n}"), "tools is already set", 8},
		{"allow nothing", global("connector c {\nurl https://c.example.com/mcp\ntools {\nallow\n}\n}"), "wrong argument count", 6},
		{"duplicate allow", global("connector c {\nurl https://c.example.com/mcp\ntools {\nallow search fetch\nallow search\n}\n}"), `allow: "search" is listed twice`, 7},
		{"bad operation", global("connector c {\nurl https://c.example.com/mcp\ntools {\noperation search delete\n}\n}"), `operation "delete" must be read or write`, 6},
		{"operation one argument", global("connector c {\nurl https://c.example.com/mcp\ntools {\noperation search\n}\n}"), "wrong argument count", 6},
		{"operation twice", global("connector c {\nurl https://c.example.com/mcp\ntools {\noperation search read\noperation search write\n}\n}"), `tool "search" already has operation read`, 7},

		// HTTP API connectors
		{"neither url nor api", global("connector c {\nauth bearer x\n}"), `connector "c": url is required unless api is set`, 3},
		{"api scheme", global("connector c {\napi ftp://api.example.com\n}"), `api "ftp://api.example.com": scheme must be http or https`, 4},
		{"api relative", global("connector c {\napi /v1\n}"), "scheme must be http or https", 4},
		{"api no host", global("connector c {\napi https:///v1\n}"), "has no host", 4},
		{"api query", global("connector c {\napi https://api.example.com/v1?key=x\n}"), "must not have a query", 4},
		{"api empty query", global("connector c {\napi https://api.example.com/v1?\n}"), "must not have a query", 4},
		{"api fragment", global("connector c {\napi https://api.example.com/v1#top\n}"), "must not have a fragment", 4},
		{"api credentials", global("connector c {\napi https://u:" + canary + "@api.example.com\n}"), "credentials belong in the auth line", 4},
		{"api bad escape", global("connector c {\napi https://api.example.com/%zz\n}"), "invalid URL escape", 4},
		{"api twice", global("connector c {\napi https://a.example.com\napi https://b.example.com\n}"), "api is already set", 5},
		{"api no value", global("connector c {\napi\n}"), "wrong argument count", 4},
		{"api two values", global("connector c {\napi https://a.example.com https://b.example.com\n}"), "wrong argument count", 4},
		// presets
		{"preset without id", global("preset {\nurl https://mcp.example.com/mcp\n}"), "wrong argument count", 3},
		{"preset bad id", global("preset Git_Hub {\nurl https://mcp.example.com/mcp\n}"), "must match", 3},
		{"preset without url", global("preset github {\ntitle GitHub\n}"), "url is required", 3},
		{"preset bad url", global("preset github {\nurl ftp://mcp.example.com/mcp\n}"), "http", 4},
		{"preset duplicate url", global("preset github {\nurl https://a.example.com/mcp\nurl https://b.example.com/mcp\n}"), "url is already set", 5},
		{"preset unknown option", global("preset github {\nurl https://a.example.com/mcp\nsecret " + canary + "\n}"), `unrecognized preset option "secret"`, 5},
		// grants
		{"grant argument", global("grant all {\nsrc *\nconnectors *\n}"), "wrong argument count", 3},
		{"grant without src", global("grant {\nconnectors notion\n}"), "grant has no src", 3},
		{"grant empty", global("grant {\n}"), "grant has no src", 3},
		{"grant no connectors or items", global("grant {\nsrc *\nrole admin\n}"), "grant names no connectors and no items", 3},
		{"bad src", global("grant {\nsrc alice\nconnectors *\n}"), `source "alice": want *, user:<id> or group:<name>`, 4},
		{"empty src", global("grant {\nsrc group:\nconnectors *\n}"), `source "group:": empty group`, 4},
		{"duplicate src", global("grant {\nsrc user:alice\nsrc user:alice\nconnectors *\n}"), `src: "user:alice" is listed twice`, 5},
		{"bad role", global("grant {\nsrc *\nrole owner\nconnectors *\n}"), `role "owner": want user or admin`, 5},
		{"duplicate role", global("grant {\nsrc *\nrole user\nrole admin\nconnectors *\n}"), "role is already set", 6},
		{"bad connector pattern", global("grant {\nsrc *\nconnectors Notion\n}"), `connector pattern "Notion" may hold only`, 5},
		{"connector pattern double star", global("grant {\nsrc *\nconnectors **\n}"), "may not contain **", 5},
		{"glob partial double star", global("grant {\nsrc *\ntools notion/a**\n}"), `pattern "notion/a**": ** must be a whole segment`, 5},
		{"glob without item", global("grant {\nsrc *\ntools notion\n}"), `pattern "notion" names no item`, 5},
		{"bad resources glob", global("grant {\nsrc *\nresources Notion/*\n}"), `pattern "Notion/*": connector part`, 5},
		{"bad templates glob", global("grant {\nsrc *\ntemplates x\n}"), `pattern "x" names no item`, 5},
		{"bad prompts glob", global("grant {\nsrc *\nprompts notion/**x\n}"), "** must be a whole segment", 5},
		{"bad operations", global("grant {\nsrc *\nconnectors *\noperations write\n}"), `operations "write" must be read`, 6},
		{"duplicate operations", global("grant {\nsrc *\nconnectors *\noperations read\noperations read\n}"), "operations is already set", 7},
		{"unknown grant subdirective", global("grant {\nsrc *\nconnector notion\n}"), `unrecognized grant subdirective "connector"`, 5},
		{"bad approve glob", global("grant {\nsrc *\nconnectors *\napprove bank\n}"), `approve: pattern "bank" names no item`, 6},
		{"approve without value", global("grant {\nsrc *\nconnectors *\napprove\n}"), "wrong argument count", 6},
		{"approve twice", global("grant {\nsrc *\nconnectors *\napprove write write\n}"), `"write" is listed twice`, 6},
		{"bad approver", global("approvers bob"), `source "bob"`, 3},
		{"bad approval_ttl", global("approval_ttl soon"), `approval_ttl "soon"`, 3},
		{"negative approval_ttl", global("approval_ttl -1m"), "must be positive", 3},
		{"duplicate approval_ttl", global("approval_ttl 1m\napproval_ttl 2m"), "approval_ttl is already set", 4},
		{"webhook not http", global("approval_webhook ftp://hooks.example.com"), "want an http:// or https:// URL", 3},
		{"webhook relative", global("approval_webhook /hook"), "want an http:// or https:// URL", 3},
		{"self_approve value", global("self_approve yes"), "wrong argument count", 3},

		// the handler directive
		{"directive argument", "example.com {\n\tmcpgate notion\n}\n", "wrong argument count", 2},
		{"directive block", "example.com {\n\tmcpgate {\n\t\tconnector notion\n\t}\n}\n", "takes no block", 3},
		{"directive tool_search maybe", "example.com {\n\tmcpgate {\n\t\ttool_search maybe\n\t}\n}\n", `tool_search "maybe" must be off, on or auto`, 3},
		{"directive tool_search auto -1", "example.com {\n\tmcpgate {\n\t\ttool_search auto -1\n\t}\n}\n", `tool_search auto "-1": the threshold must be a whole number of tools, 1 or more`, 3},
		{"directive tool_search twice", "example.com {\n\tmcpgate {\n\t\ttool_search on\n\t\ttool_search off\n\t}\n}\n", "tool_search is already set", 4},
		// tool search
		{"tool_search maybe", global("tool_search maybe"), `tool_search "maybe" must be off, on or auto`, 3},
		{"tool_search auto -1", global("tool_search auto -1"), `tool_search auto "-1": the threshold must be a whole number of tools, 1 or more`, 3},
		{"tool_search auto x", global("tool_search auto x"), `tool_search auto "x": the threshold must be a whole number of tools, 1 or more`, 3},
		{"tool_search auto 0", global("tool_search auto 0"), `tool_search auto "0": the threshold must be a whole number of tools, 1 or more`, 3},
		{"tool_search on 5", global("tool_search on 5"), "tool_search on takes no threshold; only auto does", 3},
		{"tool_search no argument", global("tool_search"), "wrong argument count", 3},
		{"tool_search twice", global("tool_search on\ntool_search off"), "tool_search is already set", 4},
		{"always_list bad glob", global("always_list notion"), `pattern "notion" names no item`, 3},
		{"always_list twice", global("always_list notion/a notion/a"), `always_list: "notion/a" is listed twice`, 3},
		{"always_list no argument", global("always_list"), "wrong argument count", 3},
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := adapter.Adapt([]byte(tt.caddyfile), map[string]any{"filename": "Caddyfile"})
			if err == nil {
				t.Fatalf("adapted without error; want %q", tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
			at := regexp.MustCompile(fmt.Sprintf(`\bCaddyfile:%d\b`, tt.line))
			if !at.MatchString(msg) {
				t.Errorf("error %q is not at Caddyfile:%d", msg, tt.line)
			}
			if strings.Contains(msg, canary) {
				t.Errorf("error %q echoes a secret", msg)
			}
		})
	}
}
