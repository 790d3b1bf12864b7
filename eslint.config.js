// @ts-check
// One lint configuration for the whole tree: typescript-eslint's recommended rules, prettier for
// the format (eslint-config-prettier turns off what prettier decides), and the import boundaries
// of the README's layout, so the layering is a rule the build checks.
import js from '@eslint/js';
import boundaries from 'eslint-plugin-boundaries';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** ELT modules that workflow code may import: everything but the loader, which reads files. */
const ELT_PURE = [
  'names',
  'model-config',
  'templating',
  'data-tests',
  'data-test-query',
  'project',
  'sql-text',
  'materialize',
  'dag-tasks',
  'manifest',
  'sql-manifest',
];

/** Folders whose code runs in the Temporal workflow sandbox, or is imported by code that does. */
const SANDBOXED = ['workflows/**/*.ts', 'dags/**/*.ts', `elt/{${ELT_PURE.join(',')}}.ts`];

const element = (type) => ({ element: { type } });
const anyOf = (...types) => ({ element: { types: { anyOf: types } } });
/** `from` may import `to` (and itself). */
const may = (from, ...to) => ({ from: element(from), allow: { to: anyOf(from, ...to) } });

export default tseslint.config(
  { ignores: ['node_modules/', '.stack/', '.scratch/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  {
    files: ['**/*.ts'],
    plugins: { boundaries },
    settings: {
      'import/resolver': { typescript: { project: './tsconfig.json' } },
      'boundaries/elements': [
        // Top-level folders only (partialMatch: false), so test/workflows/ is test code, not workflow code.
        ...['core', 'elt', 'stores', 'dags', 'workflows', 'activities', 'api', 'demo', 'bench', 'test'].map((type) => ({
          type,
          pattern: type,
          partialMatch: false,
        })),
        { type: 'process', pattern: '{workers,schedules,scripts,chaos}', partialMatch: false },
      ],
    },
    rules: {
      'boundaries/dependencies': [
        'error',
        {
          default: 'disallow',
          policies: [
            may('core'),
            may('elt', 'core'),
            may('stores', 'core'),
            may('dags', 'core', 'elt'),
            may('workflows', 'core', 'dags', 'elt'),
            // Workflow code names activities by their types only: the implementations live on the worker.
            { from: element('workflows'), allow: { to: element('activities'), dependency: { kind: 'type' } } },
            may('activities', 'core', 'stores', 'elt'),
            may('api', 'core', 'stores'),
            may('demo', 'core'),
            // Processes, benchmarks and tests wire everything together.
            { from: anyOf('process', 'bench', 'test'), allow: { to: { element: { type: '*' } } } },
          ],
        },
      ],
    },
  },
  {
    files: SANDBOXED,
    rules: {
      // The workflow sandbox has no Node built-ins (Temporal's samples enforce the same).
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'workflow code is deterministic and has no Node built-ins' },
            { group: ['**/elt/load-project.js'], message: 'workflow code cannot read files: import the generated elt/sql-manifest.js' },
          ],
        },
      ],
    },
  },
  prettier,
);
