// The resource schemas this server speaks (RFC 7643 §4, §8.7): one definition drives discovery
// (/Schemas), input canonicalisation, filters and PATCH paths, so they can never disagree.

export type AttrType = 'string' | 'boolean' | 'decimal' | 'integer' | 'dateTime' | 'reference' | 'complex' | 'binary';

export interface AttrDef {
  name: string;
  type: AttrType;
  multiValued: boolean;
  description: string;
  required: boolean;
  caseExact: boolean;
  mutability: 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
  returned: 'always' | 'never' | 'default' | 'request';
  uniqueness: 'none' | 'server' | 'global';
  subAttributes?: AttrDef[];
  referenceTypes?: string[];
  canonicalValues?: string[];
}

export const URN = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  enterprise: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
  list: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  patch: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  search: 'urn:ietf:params:scim:api:messages:2.0:SearchRequest',
  error: 'urn:ietf:params:scim:api:messages:2.0:Error',
  spc: 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig',
  resourceType: 'urn:ietf:params:scim:schemas:core:2.0:ResourceType',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:Schema',
} as const;

type Opts = Partial<Omit<AttrDef, 'name' | 'type' | 'subAttributes'>>;

function attr(name: string, type: AttrType, description: string, opts: Opts = {}, subAttributes?: AttrDef[]): AttrDef {
  return {
    name,
    type,
    multiValued: false,
    description,
    required: false,
    caseExact: false,
    mutability: 'readWrite',
    returned: 'default',
    uniqueness: 'none',
    ...opts,
    ...(subAttributes ? { subAttributes } : {}),
  };
}

const str = (name: string, description: string, opts: Opts = {}) => attr(name, 'string', description, opts);

/** value/display/type/primary, the shape of emails, phoneNumbers, ims, photos, entitlements, roles… */
function multi(name: string, description: string, valueType: AttrType = 'string', types: string[] = []): AttrDef {
  return attr(name, 'complex', description, { multiValued: true }, [
    attr('value', valueType, `The value of ${name}.`),
    str('display', 'A human-readable name, primarily used for display purposes.'),
    str('type', 'A label indicating the attribute\'s function.', types.length ? { canonicalValues: types } : {}),
    attr('primary', 'boolean', 'Indicates the primary or preferred value.'),
  ]);
}

export const COMMON_ATTRS: AttrDef[] = [
  str('id', 'Unique identifier for the resource, assigned by the service provider.', { caseExact: true, mutability: 'readOnly', returned: 'always', uniqueness: 'server' }),
  str('externalId', 'Identifier for the resource as defined by the provisioning client.', { caseExact: true }),
  attr('meta', 'complex', 'Resource metadata.', { mutability: 'readOnly' }, [
    str('resourceType', 'The name of the resource type.', { caseExact: true, mutability: 'readOnly' }),
    attr('created', 'dateTime', 'When the resource was added.', { mutability: 'readOnly' }),
    attr('lastModified', 'dateTime', 'When the resource was last modified.', { mutability: 'readOnly' }),
    attr('location', 'reference', 'The URI of the resource.', { caseExact: true, mutability: 'readOnly' }),
    str('version', 'The version (ETag) of the resource.', { caseExact: true, mutability: 'readOnly' }),
  ]),
];

export const USER_ATTRS: AttrDef[] = [
  str('userName', 'Unique identifier for the User, typically used to sign in. Case-insensitive.', { required: true, uniqueness: 'server' }),
  attr('name', 'complex', 'The components of the user\'s real name.', {}, [
    str('formatted', 'The full name, formatted for display.'),
    str('familyName', 'The family name (last name).'),
    str('givenName', 'The given name (first name).'),
    str('middleName', 'The middle name(s).'),
    str('honorificPrefix', 'The honorific prefix(es), e.g. Ms.'),
    str('honorificSuffix', 'The honorific suffix(es), e.g. III.'),
  ]),
  str('displayName', 'The name of the User, suitable for display to end-users.'),
  str('nickName', 'The casual way to address the user.'),
  attr('profileUrl', 'reference', 'A URI pointing to the user\'s online profile.', { referenceTypes: ['external'] }),
  str('title', 'The user\'s title, such as "Vice President".'),
  str('userType', 'The relationship between the organization and the user.'),
  str('preferredLanguage', 'The user\'s preferred written or spoken language.'),
  str('locale', 'The user\'s default location for localization.'),
  str('timezone', 'The user\'s time zone in IANA format.'),
  attr('active', 'boolean', 'The user\'s administrative status. Inactive users cannot sign in or use any credential.'),
  str('password', 'Not stored: users sign in through the identity provider.', { mutability: 'writeOnly', returned: 'never' }),
  multi('emails', 'Email addresses for the user.', 'string', ['work', 'home', 'other']),
  multi('phoneNumbers', 'Phone numbers for the user.', 'string', ['work', 'home', 'mobile', 'fax', 'pager', 'other']),
  multi('ims', 'Instant messaging addresses for the user.'),
  multi('photos', 'URLs of photos of the user.', 'reference', ['photo', 'thumbnail']),
  attr('addresses', 'complex', 'A physical mailing address for this user.', { multiValued: true }, [
    str('formatted', 'The full mailing address.'),
    str('streetAddress', 'The full street address component.'),
    str('locality', 'The city or locality component.'),
    str('region', 'The state or region component.'),
    str('postalCode', 'The zip code or postal code component.'),
    str('country', 'The country name component.'),
    str('type', 'A label indicating the attribute\'s function.', { canonicalValues: ['work', 'home', 'other'] }),
    attr('primary', 'boolean', 'Indicates the primary mailing address.'),
  ]),
  attr('groups', 'complex', 'Groups the user belongs to, managed through the Group resource.', { multiValued: true, mutability: 'readOnly' }, [
    str('value', 'The id of the group.', { caseExact: true, mutability: 'readOnly' }),
    attr('$ref', 'reference', 'The URI of the group.', { caseExact: true, mutability: 'readOnly', referenceTypes: ['Group'] }),
    str('display', 'The display name of the group.', { mutability: 'readOnly' }),
    str('type', 'direct', { mutability: 'readOnly', canonicalValues: ['direct', 'indirect'] }),
  ]),
  multi('entitlements', 'Entitlements of the user.'),
  multi('roles', 'Roles of the user.'),
  multi('x509Certificates', 'Certificates of the user.', 'binary'),
];

export const ENTERPRISE_ATTRS: AttrDef[] = [
  str('employeeNumber', 'Numeric or alphanumeric identifier assigned to a person.'),
  str('costCenter', 'Identifies the name of a cost center.'),
  str('organization', 'Identifies the name of an organization.'),
  str('division', 'Identifies the name of a division.'),
  str('department', 'Identifies the name of a department.'),
  attr('manager', 'complex', 'The user\'s manager.', {}, [
    str('value', 'The id of the SCIM resource representing the user\'s manager.', { caseExact: true }),
    attr('$ref', 'reference', 'The URI of the manager.', { caseExact: true, referenceTypes: ['User'] }),
    str('displayName', 'The displayName of the user\'s manager.', { mutability: 'readOnly' }),
  ]),
];

export const GROUP_ATTRS: AttrDef[] = [
  str('displayName', 'A human-readable name for the Group.', { required: true, uniqueness: 'server' }),
  attr('members', 'complex', 'A list of members of the Group.', { multiValued: true }, [
    str('value', 'Identifier of the member of this Group.', { caseExact: true, mutability: 'immutable' }),
    attr('$ref', 'reference', 'The URI of the member.', { caseExact: true, mutability: 'immutable', referenceTypes: ['User'] }),
    str('display', 'The display name of the member.', { mutability: 'immutable' }),
    str('type', 'The type of the member.', { mutability: 'immutable', canonicalValues: ['User'] }),
  ]),
];

export interface ResourceSchema {
  name: 'User' | 'Group';
  endpoint: '/Users' | '/Groups';
  core: { urn: string; attrs: AttrDef[] };
  extensions: { urn: string; attrs: AttrDef[] }[];
}

export const USER_SCHEMA: ResourceSchema = {
  name: 'User',
  endpoint: '/Users',
  core: { urn: URN.user, attrs: USER_ATTRS },
  extensions: [{ urn: URN.enterprise, attrs: ENTERPRISE_ATTRS }],
};

export const GROUP_SCHEMA: ResourceSchema = {
  name: 'Group',
  endpoint: '/Groups',
  core: { urn: URN.group, attrs: GROUP_ATTRS },
  extensions: [],
};

const lower = (s: string) => s.toLowerCase();

export function findAttr(list: readonly AttrDef[], name: string): AttrDef | undefined {
  const n = lower(name);
  return list.find((a) => lower(a.name) === n);
}

/** Case-insensitive URN match against the resource's core schema or one of its extensions. */
export function findSchemaUrn(schema: ResourceSchema, urn: string): { urn: string; attrs: AttrDef[]; extension: boolean } | undefined {
  const u = lower(urn);
  if (lower(schema.core.urn) === u) return { ...schema.core, extension: false };
  const ext = schema.extensions.find((e) => lower(e.urn) === u);
  return ext && { ...ext, extension: true };
}

/** Splits "urn:…:User:manager.value" into the URN and the attribute part (the last ':' separates). */
export function splitUrn(path: string): { urn: string | null; rest: string } {
  if (!/^urn:/i.test(path)) return { urn: null, rest: path };
  const i = path.lastIndexOf(':');
  return { urn: path.slice(0, i), rest: path.slice(i + 1) };
}

export interface ResolvedAttr {
  /** Extension URN the attribute lives under, or null for core/common attributes. */
  extension: string | null;
  def: AttrDef;
  sub: AttrDef | null;
}

/**
 * Resolves an attribute path (names case-insensitive, RFC 7643 §2.1). Unqualified names look in the
 * core schema, the common attributes, then the extensions (lenient: clients send `employeeNumber`).
 */
export function resolveAttr(schema: ResourceSchema, urn: string | null, name: string, subName: string | null): ResolvedAttr | undefined {
  let found: { def: AttrDef; extension: string | null } | undefined;
  if (urn) {
    const s = findSchemaUrn(schema, urn);
    const def = s && findAttr(s.attrs, name);
    if (def) found = { def, extension: s.extension ? s.urn : null };
  } else {
    const def = findAttr(schema.core.attrs, name) ?? findAttr(COMMON_ATTRS, name);
    if (def) found = { def, extension: null };
    else {
      for (const e of schema.extensions) {
        const d = findAttr(e.attrs, name);
        if (d) {
          found = { def: d, extension: e.urn };
          break;
        }
      }
    }
  }
  if (!found) return undefined;
  if (subName === null) return { ...found, sub: null };
  const sub = found.def.subAttributes && findAttr(found.def.subAttributes, subName);
  return sub ? { ...found, sub } : undefined;
}

function schemaDoc(id: string, name: string, description: string, attrs: AttrDef[], baseUrl: string) {
  return { schemas: [URN.schema], id, name, description, attributes: attrs, meta: { resourceType: 'Schema', location: `${baseUrl}/Schemas/${id}` } };
}

export function schemaDocs(baseUrl: string) {
  return [
    schemaDoc(URN.user, 'User', 'User Account', USER_ATTRS, baseUrl),
    schemaDoc(URN.group, 'Group', 'Group', GROUP_ATTRS, baseUrl),
    schemaDoc(URN.enterprise, 'EnterpriseUser', 'Enterprise User', ENTERPRISE_ATTRS, baseUrl),
  ];
}

export function resourceTypeDocs(baseUrl: string) {
  return [
    {
      schemas: [URN.resourceType],
      id: 'User',
      name: 'User',
      endpoint: '/Users',
      description: 'User Account',
      schema: URN.user,
      schemaExtensions: [{ schema: URN.enterprise, required: false }],
      meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/User` },
    },
    {
      schemas: [URN.resourceType],
      id: 'Group',
      name: 'Group',
      endpoint: '/Groups',
      description: 'Group',
      schema: URN.group,
      schemaExtensions: [],
      meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/Group` },
    },
  ];
}

export const MAX_RESULTS = 1000;

export function serviceProviderConfig(baseUrl: string) {
  return {
    schemas: [URN.spc],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: MAX_RESULTS },
    changePassword: { supported: false },
    sort: { supported: true },
    etag: { supported: true },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'Bearer token',
        description: 'A token minted in the Nexus control plane (POST /api/v1/scim/tokens), sent as Authorization: Bearer nx_scim_…',
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${baseUrl}/ServiceProviderConfig` },
  };
}
