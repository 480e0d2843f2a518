// ESLint flat config: @eslint/js and typescript-eslint recommended, tuned to this codebase.
// Formatting is Prettier's job (.prettierrc.json); these rules are about mistakes only.
// Each override says why in one line. Run: `npm run lint`.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // Build output, installed packages, test scratch dirs and generated or fixture files.
    ignores: [
      'dist/**',
      'node_modules/**',
      'coverage/**',
      'test-output/**',
      'var/**',
      'tests/.tmp*/**',
      'tests/fixtures/**',
      'db/migrations/**',
      '**/*.d.ts',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    // Everything but the dashboard runs on Node.
    ignores: ['web/**'],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module' },
    linterOptions: {
      // A disable comment that no longer disables anything is noise: say so.
      reportUnusedDisableDirectives: 'warn',
    },
    rules: {
      // `_`-prefixed parameters and destructured leftovers are deliberate (callbacks, omit-by-rest).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // An empty catch is best-effort cleanup (a file already gone, a process already dead).
      'no-empty': ['error', { allowEmptyCatch: true }],
      // Control characters in regexes are deliberate: they find the NULs and escapes inputs are refused for.
      'no-control-regex': 'off',
    },
  },
  {
    // The dashboard runs in the browser.
    files: ['web/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // CommonJS fakes of HTCondor's commands (executed by node as scripts).
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } },
    rules: {
      // These files are CommonJS on purpose: `require` is how they load their shared lib.
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    // Tests and benchmarks poke at internals and build deliberately bad inputs.
    files: ['tests/**/*.{ts,tsx}', 'benchmarks/**/*.ts'],
    rules: {
      // Tests cast malformed bodies to `any` to prove the server refuses them.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
