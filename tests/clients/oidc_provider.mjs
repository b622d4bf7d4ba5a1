// A real OpenID Connect provider (the certified `oidc-provider` package) for mcpgate's OAuth tests.
//
// Usage: node oidc_provider.mjs --resource URL [--port N] [--scope "mcp orders"]
//
// - Listens on 127.0.0.1 (a free port unless --port is given: the key-rotation test restarts it
//   on the same port, so that its issuer stays the same) and prints
//   `oidc-provider listening on ISSUER kid KID` on stdout once it accepts connections.
// - Signs with a P-256 key generated at start: every start is a key rotation.
// - Open dynamic client registration (RFC 7591), PKCE, and resource indicators (RFC 8707): an
//   access token is a JWT (RFC 9068) whose `aud` is the gateway's resource URL, the only resource
//   it issues tokens for, with the requested scopes among --scope.
// - The development interactions (a login form taking any name, then a consent form) are kept:
//   the test's client submits them with an HTTP client, so no browser is needed. The login name
//   becomes the token's `sub`.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    resource: { type: 'string' },
    scope: { type: 'string', default: 'mcp' },
  },
});
if (!args.resource) {
  console.error('--resource URL is required: the gateway URL tokens are issued for');
  process.exit(2);
}

const kid = randomUUID();
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };

// The port is bound before the provider is built: the issuer names it.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(args.port), '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  // Registered clients get ID tokens signed with the one key there is (the default is RS256).
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  // Registration checks a client's `scope` against these: the resource's scopes are among them.
  scopes: ['openid', 'offline_access', ...args.scope.split(' ')],
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => args.resource,
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, resourceIndicator) {
        if (resourceIndicator !== args.resource) {
          throw new errors.InvalidTarget(`this provider issues tokens for ${args.resource} only`);
        }
        return {
          scope: args.scope,
          audience: resourceIndicator,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  pkce: { required: () => true },
  // A headless client completes consent without a session cookie lasting past the test.
  cookies: { keys: [randomUUID()] },
});

server.on('request', provider.callback());
console.log(`oidc-provider listening on ${issuer} kid ${kid}`);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
