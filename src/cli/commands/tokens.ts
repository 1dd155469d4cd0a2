// `cloacina-sign tokens create|list|revoke`: API tokens of the signing service. The token is printed once,
// at creation, on stdout; only its SHA-256 is stored. Needs the database, never the KEK.
import { Command } from 'commander';
import { type DatabaseOptions, withDatabase, withDbOptions } from '../context';
import { printData, runAction, say, terminalSafe } from '../output';
import { formatTable } from '../table';
import { collect } from '../trust';

interface CreateOptions extends DatabaseOptions {
  org: string;
  scope?: string[];
  expires?: string;
  name?: string;
}

export function tokensCommand(): Command {
  const tokens = new Command('tokens').description('API tokens of the signing service (`serve`): who may sign with which key, and upload');
  withDbOptions(
    tokens
      .command('create')
      .description('create a token and print it once (only its hash is stored)')
      .requiredOption('--org <org>', 'the organization the token acts for (id or name)')
      .option('--scope <scope>', 'sign:<key-id> (a signing key of the organization; repeatable) or upload', collect)
      .option('--expires <when>', 'a duration (30d, 12h, 45m, 3600s) or an RFC 3339 time such as 2027-01-31T12:00:00Z (default: never)')
      .option('--name <name>', 'what the token is for (shown by tokens list)'),
  ).action((options: CreateOptions) =>
    runAction(options, async () => {
      const { parseExpiry, TokenManager } = await import('../../db/tokens');
      // Checked before the database is opened.
      const expiresAt = options.expires === undefined ? null : parseExpiry(options.expires);
      await withDatabase(options, async ({ keys, org }) => {
        const owner = await org(options.org);
        const { token, info } = await new TokenManager(keys).create({ orgId: owner.id, scopes: options.scope ?? [], expiresAt, name: options.name });
        say(
          `Created API token ${info.id} for "${terminalSafe(owner.name)}" with scopes ${info.scopes.join(' ')}${info.expiresAt ? `, expiring ${info.expiresAt}` : ', no expiry'}. ` +
            'It is shown this once: store it as a secret (CLOACINA_API_TOKEN).',
        );
        printData(options, { ...info, token }, token);
      });
    }),
  );
  withDbOptions(
    tokens
      .command('list')
      .description("the organization's tokens: id, name, scopes, created, expires, status (never the token)")
      .requiredOption('--org <org>', 'id or name'),
  ).action((options: DatabaseOptions & { org: string }) =>
    runAction(options, () =>
      withDatabase(
        options,
        async ({ keys, org }) => {
          const { TokenManager } = await import('../../db/tokens');
          const owner = await org(options.org);
          const list = await new TokenManager(keys).list(owner.id);
          const rows = list.map((t) => [t.id, t.name ?? '', t.scopes.join(' '), t.createdAt, t.expiresAt ?? 'never', t.status]);
          printData(options, list, formatTable(['ID', 'NAME', 'SCOPES', 'CREATED', 'EXPIRES', 'STATUS'], rows));
        },
        { readOnly: true },
      ),
    ),
  );
  withDbOptions(tokens.command('revoke <token-id>').description('revoke a token: every service process refuses it within 1 second')).action(
    (tokenId: string, options: DatabaseOptions) =>
      runAction(options, () =>
        withDatabase(options, async ({ keys }) => {
          const { TokenManager } = await import('../../db/tokens');
          const revoked = await new TokenManager(keys).revoke(tokenId);
          say(`Revoked API token ${revoked.id}`);
          printData(options, revoked, revoked.id);
        }),
      ),
  );
  return tokens;
}
