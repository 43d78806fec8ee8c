// ESLint (flat config): typescript-eslint's type-checked rules everywhere, and the Temporal
// sandbox's rules for workflow code: no Node built-ins (the bundler refuses them) and no clocks
// or randomness outside @temporalio/workflow's deterministic versions. Formatting is Prettier's.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [
  'assert',
  'buffer',
  'child_process',
  'crypto',
  'dns',
  'events',
  'fs',
  'http',
  'https',
  'net',
  'os',
  'path',
  'process',
  'stream',
  'timers',
  'tls',
  'url',
  'util',
  'worker_threads',
  'zlib',
];

export default tseslint.config(
  { ignores: ['node_modules/', 'data/', '.tools/', 'trainer/', 'test-results/', 'dashboards/grafana/', 'web/vendor/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'models/*.mjs'] }, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Values parsed from JSON, ONNX metadata and query rows are `any` until a zod schema or a
      // cast names them; the schemas at the edges are the check, so these stay warnings-free off.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      // Activities, fakes and handlers implement async interfaces; some have nothing to await.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    // Where the workers find the workflows: loaded by workers, never bundled into the sandbox.
    ignores: ['workflows/workflows-path.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins
            .flatMap((m) => [m, `node:${m}`])
            .map((name) => ({ name, message: 'workflow code runs in the Temporal sandbox: do I/O in an activity' })),
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'use uuid4() or pass randomness in from an activity' },
        { object: 'process', property: 'env', message: 'workflows must not branch on the environment: pass settings as input' },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'use sleep() from @temporalio/workflow' },
        { name: 'setInterval', message: 'use sleep() in a loop' },
        { name: 'fetch', message: 'do I/O in an activity' },
      ],
    },
  },
  { files: ['web/**/*.js'], ...tseslint.configs.disableTypeChecked },
  // The pages run in the browser; ops.html loads uPlot and api-docs.html Swagger UI as globals.
  { files: ['web/**/*.js'], languageOptions: { globals: { ...globals.browser, uPlot: 'readonly', SwaggerUIBundle: 'readonly' } } },
  prettier,
);
