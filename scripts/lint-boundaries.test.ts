// The architecture rule must actually fire: a surface importing another surface fails lint.
import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import { REPO } from '../test/helpers/appliance.ts';

describe('surface boundary lint rule', () => {
  const eslint = new ESLint({ cwd: REPO });
  const lint = async (file: string, code: string) => {
    const [res] = await eslint.lintText(code, { filePath: `${REPO}/${file}` });
    return res!.messages.filter((m) => m.ruleId === 'no-restricted-imports').length;
  };
  it('rejects cross-surface and upward imports', async () => {
    expect(await lint('src/surfaces/gateway/x.ts', "import { a } from '../hub/relay.ts';\nexport { a };\n")).toBe(1);
    expect(await lint('src/surfaces/scim/routes/x.ts', "import { a } from '../../control/http.ts';\nexport { a };\n")).toBe(1);
    expect(await lint('src/core/x.ts', "import { a } from '../surfaces/control/http.ts';\nexport { a };\n")).toBe(1);
    expect(await lint('src/agent/x.ts', "import { a } from '../server/app.ts';\nexport { a };\n")).toBe(1);
  });
  it('allows imports from core and within a surface', async () => {
    expect(await lint('src/surfaces/gateway/x.ts', "import { a } from '../../core/errors/errors.ts';\nimport { b } from './y.ts';\nexport { a, b };\n")).toBe(0);
    expect(await lint('src/server/x.ts', "import { a } from '../surfaces/hub/index.ts';\nexport { a };\n")).toBe(0);
  });
});
