// Resource endpoint names are matched case-insensitively: Microsoft's validator asks for `/users`.
export const SCIM_BASE = '/scim/v2';

export function scimPaths(path: string): string[] {
  const canonical = SCIM_BASE + path;
  const lower = SCIM_BASE + path.replace(/\/[A-Za-z.]+/g, (s) => s.toLowerCase());
  return canonical === lower ? [canonical] : [canonical, lower];
}
