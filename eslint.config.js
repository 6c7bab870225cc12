// ESLint (flat config): typescript-eslint's recommended rules over the
// TypeScript sources; formatting is Prettier's job (.prettierrc.json).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'dist-demo/', 'test-artifacts/', 'bench/results/', 'docs/api/', 'scratch/', '.vite/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,mjs,js}'],
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        performance: 'readonly',
        setTimeout: 'readonly',
        window: 'readonly',
        document: 'readonly',
        navigator: 'readonly',
        GPUBufferUsage: 'readonly',
        GPUMapMode: 'readonly',
        URL: 'readonly',
      },
    },
    rules: {
      // Unused arguments keep a rule's signature readable (`(g, _, out) => ...`).
      '@typescript-eslint/no-unused-vars': ['error', { args: 'none', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Tests type deliberately bad inputs and brand classes with unused private fields.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', 'no-unused-private-class-members': 'off' },
  },
);
