import tseslint from 'typescript-eslint';

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
      'no-restricted-imports': ['error', { paths: [{ name: 'vscode', message: 'engine/ must not import vscode (see ARCHITECTURE.md)' }] }],
      'no-restricted-syntax': ['error', {
        selector: "CallExpression[callee.name='require'][arguments.0.value='vscode']",
        message: 'engine/ must not require vscode (see ARCHITECTURE.md)',
      }],
    },
  },
  {
    // Invariant: the examples use only the engine's public entry, as a library user would.
    files: ['examples/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../engine/*', '../extension/**', '../test/**'], message: 'examples import only the public entry: ../engine' }] }],
    },
  },
  {
    // Invariant: guest and config text never becomes a link in a notification (see extension/ui/notify.ts).
    files: ['extension/**/*.ts'],
    ignores: ['extension/ui/notify.ts'],
    rules: {
      'no-restricted-syntax': ['error', {
        selector: 'MemberExpression[property.name=/^show(Error|Warning|Information)Message$/]',
        message: 'show notifications through extension/ui/notify.ts (showError/showWarning/showInfo with notice`...`)',
      }],
    },
  },
);
