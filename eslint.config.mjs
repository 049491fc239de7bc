import tseslint from 'typescript-eslint';

/** Any module under engine/ except its public entry (`engine` or `engine/index`), from any depth. */
export const ENGINE_INTERNALS = {
  regex: '^(\\.\\./)+engine/(?!index(\\.ts)?$).+',
  message:
    "extension/ imports only the engine's public entry (../engine/index); export what it needs there (see ARCHITECTURE.md)",
};

/**
 * Engine internals a bench row may still import, each with why the public entry cannot serve.
 * The rest of what rows need from inside the engine goes through bench/ helpers:
 * bench/engine-home.ts (the home's layout, for cold-run cleanup) and bench/raw-qemu.ts,
 * bench/raw-restore.ts (the raw-QEMU baselines).
 */
export const BENCH_ROW_EXCEPTIONS = {
  'egress/proxy':
    'the egress row times the proxy alone on loopback, with no VM; the public API reaches it only through a VM',
  'workspace/services/relay':
    "the express row links its VM to a registry on the host through a service link, whose unix socket a compose workspace's ServiceRelay makes",
  'vm/state-dir':
    "the express row's link socket lives in a private run directory that QEMU's user may pass, as a compose workspace's does",
  'qemu/run-as': 'the same: whether QEMU drops to its own user decides the link directory and socket permissions',
};

/** Any module under engine/ except its public entry and BENCH_ROW_EXCEPTIONS, from any depth. */
export const ENGINE_INTERNALS_FOR_BENCH = {
  regex: `^(\\.\\./)+engine/(?!(?:index(\\.ts)?|${Object.keys(BENCH_ROW_EXCEPTIONS).join('|')})$).+`,
  message:
    "bench rows import only the engine's public entry (../../engine); an exception needs a reason in BENCH_ROW_EXCEPTIONS (eslint.config.mjs)",
};

/** The extension's files with logic that does not need VS Code; they never import `vscode`. */
export const PURE_EXTENSION_FILES = [
  'extension/config/settings.ts',
  'extension/ports/rules.ts',
  'extension/terminal/guest-terminal.ts',
  'extension/ui/failure-notice.ts',
  'extension/ui/notice-text.ts',
  'extension/ui/plain-text.ts',
  'extension/ui/status.ts',
  'extension/vm/config-choice.ts',
  'extension/vm/learned-hosts.ts',
  'extension/vm/trust.ts',
];

const VSCODE_IN_PURE_FILE = {
  name: 'vscode',
  message:
    'this extension file is pure (PURE_EXTENSION_FILES in eslint.config.mjs): take what it needs from VS Code as a parameter',
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Invariant: the engine is a plain Node library; only extension/ may talk to VS Code.
    files: ['engine/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'vscode', message: 'engine/ must not import vscode (see ARCHITECTURE.md)' }] },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.name='require'][arguments.0.value='vscode']",
          message: 'engine/ must not require vscode (see ARCHITECTURE.md)',
        },
      ],
    },
  },
  {
    // Invariant: the examples use only the engine's public entry, as a library user would.
    files: ['examples/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../engine/*', '../extension/**', '../test/**'],
              message: 'examples import only the public entry: ../engine',
            },
          ],
        },
      ],
    },
  },
  {
    // Invariant: the bench measures what a library user gets: its rows use the engine's public entry.
    files: ['bench/rows/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [ENGINE_INTERNALS_FOR_BENCH] }] },
  },
  {
    // Invariant: the extension is a client of the engine's public entry, never of its internals.
    files: ['extension/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [ENGINE_INTERNALS] }] },
  },
  {
    // Invariant: the extension's pure files hold logic that runs without VS Code (unit-tested in test/unit).
    files: PURE_EXTENSION_FILES,
    rules: { 'no-restricted-imports': ['error', { paths: [VSCODE_IN_PURE_FILE], patterns: [ENGINE_INTERNALS] }] },
  },
  {
    // Invariant: guest and config text never becomes a link in a notification (see extension/ui/notify.ts).
    files: ['extension/**/*.ts'],
    ignores: ['extension/ui/notify.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'MemberExpression[property.name=/^show(Error|Warning|Information)Message$/]',
          message:
            'show notifications through extension/ui/notify.ts (showError/showWarning/showInfo with notice`...`)',
        },
      ],
    },
  },
);
