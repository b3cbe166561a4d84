// The nevers of the house (docs/architecture.md), checked on every `npm test` by dependency-cruiser:
// one rule per never, no cycles between files or between folders, and no import past a package's
// exports. `npm run depcruise` prints every violation with the rule that names it.

const SERVER = '^packages/server/src/';
const floor = (name) => `${SERVER}${name}/`;
const GROUND = floor('ground');
const CONFIG = floor('config');
const STORAGE = floor('storage');
const SYNC = floor('sync');
const KEYS = floor('keys');
const OBSERVABILITY = floor('observability');
const CLIENTS = floor('clients');
const LIMITS = floor('limits');
const TRUSTS = floor('trusts');
const FEDERATION = floor('federation');
const OAUTH = floor('oauth');
const HTTP = floor('http');
const ADMIN = floor('admin');
const CLI = floor('cli');
const SERVER_TS = `${SERVER}server\\.ts$`;
const INDEX_TS = `${SERVER}index\\.ts$`;
const TOOLS = '^packages/tools/';
const SDK = '^packages/sdk/';
const TESTS = '^packages/[^/]+/test/';

/** What another package may be imported as: the files its package.json "exports" names, built or typed. */
const EXPORTED = [
  '^packages/sdk/dist/(client|verify)\\.(js|d\\.ts)$',
  '^packages/tools/dist/index\\.(js|d\\.ts)$',
  '^packages/tools/bench/lib/index\\.(js|d\\.ts)$',
  '^packages/server/dist/(index|client|verify|storage/conformance)\\.(js|d\\.ts)$',
];

const never = (name, comment, from, to) => ({ name, comment, severity: 'error', from, to });

module.exports = {
  forbidden: [
    never('ground-imports-nothing-of-ours', 'The ground floor (shared vocabulary, error types, byte helpers) imports nothing of ours.',
      { path: GROUND }, { path: '^packages/', pathNot: GROUND }),
    never('storage-stays-below', 'storage imports no oauth, http, admin, sync, keys, clients (nor limits, observability, config, cli, server.ts: only ground).',
      { path: STORAGE }, { path: [OAUTH, HTTP, ADMIN, SYNC, KEYS, CLIENTS, LIMITS, OBSERVABILITY, CONFIG, CLI, SERVER_TS] }),
    never('keys-below-the-core', 'keys imports no oauth, http, clients (nor admin, limits, sync, cli, server.ts).',
      { path: KEYS }, { path: [OAUTH, HTTP, CLIENTS, ADMIN, LIMITS, SYNC, CLI, SERVER_TS] }),
    never('config-imports-only-ground', 'config imports nothing of ours but ground.',
      { path: CONFIG }, { path: '^packages/', pathNot: [GROUND, CONFIG] }),
    never('observability-knows-no-feature', 'observability knows no feature (no clients, oauth, sync, http, admin, limits, keys, cli, server.ts): features emit events, it listens.',
      { path: OBSERVABILITY }, { path: [CLIENTS, OAUTH, SYNC, HTTP, ADMIN, LIMITS, KEYS, FEDERATION, CLI, SERVER_TS] }),
    never('clients-imports-no-oauth', 'clients imports no oauth (nor http, admin, limits, sync, cli, server.ts).',
      { path: CLIENTS }, { path: [OAUTH, HTTP, ADMIN, LIMITS, SYNC, CLI, SERVER_TS] }),
    never('trusts-below-the-core', 'trusts imports no oauth (nor http, admin, limits, sync, cli, server.ts); clients imports no trusts (the client registry reads trusts through ground\'s TrustLookup).',
      { path: TRUSTS }, { path: [OAUTH, HTTP, ADMIN, LIMITS, SYNC, CLI, SERVER_TS] }),
    never('clients-imports-no-trusts', 'clients imports no trusts: a federated client\'s trust is read through ground\'s TrustLookup, and trusts reuses clients/jwk.ts.',
      { path: CLIENTS }, { path: TRUSTS }),
    never('sync-imports-no-oauth', 'sync imports no oauth (nor http, admin, clients, limits, keys, cli, server.ts).',
      { path: SYNC }, { path: [OAUTH, HTTP, ADMIN, CLIENTS, LIMITS, KEYS, CLI, SERVER_TS] }),
    never('limits-below-the-core', 'limits imports no oauth, http, admin, cli, server.ts (it implements what the core asks of it).',
      { path: LIMITS }, { path: [OAUTH, HTTP, ADMIN, CLI, SERVER_TS] }),
    never('federation-below-the-core', 'federation (fetching trusted issuers\' keys, single-use jti) imports no oauth, http, admin, clients, trusts, limits, sync, cli, server.ts: the core asks it for keys of a trust record.',
      { path: FEDERATION }, { path: [OAUTH, HTTP, ADMIN, CLIENTS, TRUSTS, LIMITS, SYNC, CLI, SERVER_TS] }),
    never('oauth-knows-no-transport', 'oauth imports no http, admin, cli, server.ts, sync, and no HTTP framework.',
      { path: OAUTH }, { path: [HTTP, ADMIN, CLI, SERVER_TS, SYNC, '(^|/)node_modules/(fastify|@fastify/[^/]+|find-my-way|light-my-request)/'] }),
    never('http-imports-no-storage', 'http imports no storage: it reaches data through the core\'s ports (nor admin, sync, cli, server.ts).',
      { path: HTTP }, { path: [STORAGE, ADMIN, SYNC, CLI, SERVER_TS] }),
    never('admin-imports-no-public-listener', 'admin imports no http (the public listener), cli, server.ts.',
      { path: ADMIN }, { path: [HTTP, CLI, SERVER_TS] }),
    never('tools-only-from-the-cli', 'Nothing in the server but its command-line layer imports the tools package (and the CLI loads it lazily).',
      { path: SERVER, pathNot: CLI }, { path: TOOLS }),
    never('server-ts-only-from-cli', 'Nothing imports server.ts but the CLI, the package\'s entry (index.ts re-exports createServer) and tests.',
      { path: '^packages/', pathNot: [CLI, INDEX_TS, TESTS] }, { path: SERVER_TS }),
    never('cli-is-the-top-floor', 'Nothing of the server imports its command line, but the executable itself.',
      { path: SERVER, pathNot: CLI }, { path: CLI }),
    never('sdk-stands-alone', 'The SDK imports nothing of the server or the tools.',
      { path: SDK }, { path: ['^packages/server/', TOOLS] }),
    never('tools-import-no-server', 'The tools import nothing of the server package: they start its command as a child process and talk to it over HTTP.',
      { path: TOOLS }, { path: '^packages/server/' }),
    never('no-import-past-exports', 'Another package is imported by its name and the entry points of its exports only (never by a relative path or past its exports).',
      { path: '^packages/([^/]+)/' }, { path: '^packages/', pathNot: ['^packages/$1/', ...EXPORTED] }),
    {
      name: 'not-to-unresolvable',
      comment: 'An import that does not resolve: a typo, a missing dependency, or a subpath past a package\'s exports.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-circular',
      comment: 'No cycles between files.',
      severity: 'error',
      from: { path: '^packages/' },
      to: { circular: true },
    },
    {
      name: 'no-circular-folders',
      comment: 'No cycles between folders.',
      severity: 'error',
      scope: 'folder',
      from: { path: '^packages/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: ['node_modules', '^packages/[^/]+/dist/'] },
    exclude: { path: ['(^|/)dist-check/', '(^|/)\\.cache/', '(^|/)coverage/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
