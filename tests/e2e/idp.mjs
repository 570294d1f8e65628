// A real OpenID provider for the end-to-end tests: oidc-provider (OpenID-certified) with its
// built-in login and consent pages. Any login and password are accepted; the account's e-mail
// is `<login>@example.org`, verified unless the login starts with `unverified`.
import Provider from 'oidc-provider';

export async function startIdp({ port, clients }) {
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients,
    // Put e-mail and profile claims in the ID token, as Google does.
    conformIdTokenClaims: false,
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'picture'] },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: `${id}@example.org`,
            email_verified: !id.startsWith('unverified'),
            name: `User ${id}`,
            picture: `https://img.example/${id}.png`,
          };
        },
      };
    },
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['authhost-e2e-cookie-key'] },
  });
  const server = provider.listen(port, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { issuer, close: () => new Promise((resolve) => server.close(resolve)) };
}
