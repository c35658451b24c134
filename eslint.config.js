// Lint: TypeScript recommended rules, plus the architecture rule of STYLE.md habit 1 — no surface
// imports another surface's internals; shared needs move to src/core/. Only src/server/ (the
// composition root) may import surfaces.
import tseslint from 'typescript-eslint';

const SURFACES = ['control', 'gateway', 'hub', 'scim', 'console'];

const surfaceRules = SURFACES.map((name) => ({
  files: [`src/surfaces/${name}/**/*.ts`],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: [{
        regex: `(^|/)(surfaces/)?(${SURFACES.filter((s) => s !== name).join('|')})/|^\\.\\./\\.\\./(agent|cli|server)/|^\\.\\./(${SURFACES.filter((s) => s !== name).join('|')})(/|$)`,
        message: 'A surface may not import another surface, the agent, the CLI or the server; move shared code to src/core/.',
      }],
    }],
  },
}));

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'web/dist/**', 'test-output/**', '.data/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': 'off',
    },
  },
  {
    files: ['src/core/**/*.ts', 'src/protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '(^|/)(surfaces|server|agent|cli)/', message: 'core/ and protocol/ depend on nothing above them.' }],
      }],
    },
  },
  {
    files: ['src/first-boot/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '(^|/)(surfaces|server|agent|cli|protocol)/', message: 'first-boot uses only core/.' }],
      }],
    },
  },
  {
    files: ['src/agent/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '(^|/)(surfaces|server)/', message: 'The agent shares only core/ and protocol/ with the appliance.' }],
      }],
    },
  },
  ...surfaceRules,
);
