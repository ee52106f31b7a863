// server.mjs runs oidc-provider as a loopback OAuth authorization server for
// mcpgate's end-to-end tests. testas.go starts it; it is not a product.
//
// Usage: node server.mjs [port]   (port 0 or absent: any free port)
//
// Configuration is the JSON object in the environment variable TESTAS_CONFIG:
//   resource        the one resource indicator (RFC 8707) accepted; required
//   scopes          that resource's scopes; default ["mcp"]
//   accessTokenTTL  access token lifetime in seconds; default 3600
//   accounts        accounts that may log in; the first is the default
//   rsSecret        client_secret of client "testas-rs", which may introspect
//                   any token; required
//   issuer          the issuer identifier, for a server behind a proxy at
//                   that URL; default http://127.0.0.1:PORT
//   keyClients      [{client_id, redirect_uri, jwk}] of clients that
//                   authenticate with private_key_jwt (RFC 7523) by the
//                   public key jwk
//   serviceClients  {client_id: client_secret} of clients that may use the
//                   client credentials grant only, with the resource's
//                   scopes; the grant is enabled only when there are some
//   dpop            true: DPoP (RFC 9449) is on, and advertised in the
//                   metadata; default off
//   dpopNonce       true: DPoP is on, and the token endpoint requires a
//                   server-provided nonce in proofs (RFC 9449 §8)
//
// The first line on stdout is {"issuer":"…","listen":"http://127.0.0.1:PORT"}
// once the server accepts connections. Everything else goes to stderr.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors, interactionPolicy } from 'oidc-provider';

// oidc-provider prints its notices with console.info, which is stdout; keep
// stdout for the port line alone.
console.log = console.info = console.warn;

const config = JSON.parse(process.env.TESTAS_CONFIG || '{}');
const { resource, rsSecret } = config;
if (!resource || !rsSecret) {
  console.error('testas: TESTAS_CONFIG must set resource and rsSecret');
  process.exit(2);
}
const scopes = (config.scopes || ['mcp']).join(' ');
const accessTokenTTL = config.accessTokenTTL || 3600;
const accounts = config.accounts || ['alice'];
const keyClients = (config.keyClients || []).map((c) => ({
  client_id: c.client_id,
  token_endpoint_auth_method: 'private_key_jwt',
  jwks: { keys: [c.jwk] },
  redirect_uris: [c.redirect_uri],
}));
const serviceClients = Object.entries(config.serviceClients || {}).map(([id, secret]) => ({
  client_id: id,
  client_secret: secret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: scopes,
}));

// stats is what GET /_test/stats returns.
const stats = {
  token_requests: {}, // by grant_type, every request whatever its outcome
  token_errors: {}, // by grant_type, the requests that were refused
  authorizations: 0, // requests to the authorization endpoint
  registrations: 0, // successful dynamic client registrations
  revocations: 0, // requests to the revocation endpoint
  introspections: 0, // requests to the introspection endpoint
};

// loginHintMismatch asks for a new login when login_hint names someone other
// than the session's account, so that one cookie jar can log in several users.
const loginHintMismatch = new interactionPolicy.Check(
  'login_hint_mismatch',
  'login_hint names another account',
  (ctx) => {
    const { params, session } = ctx.oidc;
    return Boolean(params.login_hint && session.accountId && params.login_hint !== session.accountId);
  },
);
const policy = interactionPolicy.base();
policy.get('login').checks.push(loginHintMismatch);

function configuration() {
  // An EC key: generating an RSA one takes most of the start-up time. It
  // signs only ID tokens, which the tests do not ask for.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'testas', use: 'sig', alg: 'ES256' }] },
    enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // The resource server's own client, for introspection (RFC 7662).
    clients: [...keyClients, {
      client_id: 'testas-rs',
      client_secret: rsSecret,
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    }, ...serviceClients],
    // Registered clients may refresh unless they register grant_types
    // without refresh_token.
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      id_token_signed_response_alg: 'ES256',
    },
    scopes: ['openid', 'offline_access', ...scopes.split(' ')],
    findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}`, policy },
    pkce: { required: () => true }, // oidc-provider 9 only knows S256
    // A refresh token for every code grant, not only with offline_access,
    // and a new one on every use (OAuth 2.1 section 4.3.1).
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    // Tokens outlive the browser session, as with offline_access: without
    // this, a refresh token dies when the next login_hint replaces its
    // account's session in the same cookie jar.
    expiresWithSession: async () => false,
    ttl: { AccessToken: accessTokenTTL, Interaction: 600, Session: 86400, Grant: 86400 },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true }, // open: no initial access token
      // Only for the service clients: no other client is allowed the grant.
      clientCredentials: { enabled: serviceClients.length > 0 },
      revocation: { enabled: true },
      introspection: { enabled: true },
      // Off unless asked for (it is on in oidc-provider by default), so
      // that its metadata does not make clients bind their tokens.
      dPoP: config.dpopNonce
        ? { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true }
        : { enabled: Boolean(config.dpop) },
      resourceIndicators: {
        enabled: true,
        // Opaque tokens: the resource server introspects them, so that
        // revocation takes effect at once.
        getResourceServerInfo(ctx, indicator) {
          if (indicator !== resource) throw new errors.InvalidTarget();
          return { scope: scopes, audience: resource, accessTokenTTL, accessTokenFormat: 'opaque' };
        },
      },
    },
  };
}

// count updates stats after oidc-provider has handled a request.
function count(ctx) {
  const route = ctx.oidc?.route;
  if (route === 'token') {
    const grant = ctx.oidc.params?.grant_type || 'none';
    stats.token_requests[grant] = (stats.token_requests[grant] || 0) + 1;
    if (ctx.status >= 400) stats.token_errors[grant] = (stats.token_errors[grant] || 0) + 1;
  } else if (route === 'authorization') {
    stats.authorizations += 1;
  } else if (route === 'registration' && ctx.status === 201) {
    stats.registrations += 1;
  } else if (route === 'revocation') {
    stats.revocations += 1;
  } else if (route === 'introspection') {
    stats.introspections += 1;
  }
}

// interact completes an interaction without a human: it logs in the account
// named by login_hint (else the first account), then grants everything asked.
async function interact(provider, req, res) {
  const interaction = await provider.interactionDetails(req, res);
  const { prompt, params, session, grantId } = interaction;
  if (prompt.name === 'login') {
    const accountId = params.login_hint || accounts[0];
    if (!accounts.includes(accountId)) {
      const result = { error: 'access_denied', error_description: `unknown account ${accountId}` };
      return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    }
    if (session && session.accountId !== accountId) await forgetSession(provider, interaction);
    return provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
  }
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const { details } = prompt;
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, wanted] of Object.entries(details.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, wanted.join(' '));
  }
  const consent = { grantId: await grant.save() };
  return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

// forgetSession ends the browser's session with another account before a
// login, so that one cookie jar can hold several users in turn: otherwise
// oidc-provider resumes with a logout form that only JavaScript submits.
async function forgetSession(provider, interaction) {
  const session = await provider.Session.find(interaction.session.cookie);
  await session?.destroy();
  delete interaction.session;
  await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
}

// route sends the test-only paths to their handlers and the rest to
// oidc-provider.
function route(provider) {
  const callback = provider.callback();
  return async (req, res) => {
    const { pathname } = new URL(req.url, provider.issuer);
    try {
      if (req.method === 'GET' && pathname.startsWith('/interaction/')) {
        return await interact(provider, req, res);
      }
      if (req.method === 'GET' && pathname === '/_test/stats') {
        res.setHeader('Content-Type', 'application/json');
        return res.end(JSON.stringify(stats));
      }
    } catch (err) {
      console.error('testas:', err);
      res.statusCode = 500;
      return res.end(String(err));
    }
    return callback(req, res);
  };
}

const server = createServer();
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  const listen = `http://127.0.0.1:${server.address().port}`;
  const issuer = config.issuer || listen;
  const provider = new Provider(issuer, configuration());
  provider.use(async (ctx, next) => {
    await next();
    count(ctx);
  });
  server.on('request', route(provider));
  process.stdout.write(`${JSON.stringify({ issuer, listen })}\n`);
});

// The Go helper kills the process group; a signal from a terminal ends it too.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
