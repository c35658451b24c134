// Providers and public models, and the in-memory routing table built from them. Every request reads
// the table; every admin write rebuilds it, so the cache is exact and the hot path touches no SQL.
// Edits keep a deployment's id when its provider and upstream model stay the same (its cooldown and
// usage history stay with it); deployments that go away are reported so the router forgets them.
import { randomUUID } from 'node:crypto';
import type { SecretBox } from '../../../core/crypto/secret-box.ts';
import type { Db } from '../../../core/db/db.ts';
import { AppError, conflict, notFound } from '../../../core/errors/errors.ts';
import { createCatalogStore, type DeploymentRow, type ModelRow, type ProviderRow, type ProviderType, type RoutingStrategy } from './catalog-store.ts';

export type { ProviderType, RoutingStrategy };

export interface Provider {
  id: string;
  name: string;
  type: ProviderType;
  baseUrl: string;
  apiKey: string | null;
  apiVersion: string | null;
  nodeId: string | null;
}

export interface Deployment {
  id: string;
  provider: Provider;
  upstreamModel: string;
  weight: number;
  priority: number;
}

export interface Model {
  id: string;
  name: string;
  inputPricePerMtok: number;
  outputPricePerMtok: number;
  /** Price of cached input tokens; null prices them like other input tokens. */
  cachedInputPricePerMtok: number | null;
  /** USD per minute of input audio (transcriptions, translations); null: not priced by length. */
  audioInputPricePerMinute: number | null;
  /** USD per million characters of speech input; null: not priced by characters. */
  ttsPricePerMchar: number | null;
  /** How long identical non-streamed calls are answered from the response cache; null: never. */
  cacheTtlSeconds: number | null;
  routing: RoutingStrategy;
  created: number;
  deployments: Deployment[];
}

export interface NewProvider {
  name: string;
  type: ProviderType;
  base_url?: string;
  api_key?: string;
  api_version?: string;
  node_id?: string;
}

export interface NewDeployment {
  provider_id: string;
  upstream_model: string;
  weight?: number;
  priority?: number;
}

export interface NewModel {
  name: string;
  deployments: NewDeployment[];
  input_price_per_mtok?: number;
  output_price_per_mtok?: number;
  cached_input_price_per_mtok?: number | null;
  audio_input_price_per_minute?: number | null;
  tts_price_per_mchar?: number | null;
  cache_ttl_seconds?: number | null;
  routing_strategy?: RoutingStrategy;
}

/** PATCH /api/v1/providers/{id}: the type cannot change (deployments' upstream names depend on it). */
export interface ProviderPatch {
  name?: string;
  base_url?: string;
  /** A new key (sealed again), or null to remove it. */
  api_key?: string | null;
  api_version?: string | null;
  node_id?: string | null;
}

/** PATCH /api/v1/models/{id}: `deployments` replaces the whole list. */
export interface ModelPatch {
  deployments?: NewDeployment[];
  input_price_per_mtok?: number;
  output_price_per_mtok?: number;
  cached_input_price_per_mtok?: number | null;
  audio_input_price_per_minute?: number | null;
  tts_price_per_mchar?: number | null;
  cache_ttl_seconds?: number | null;
  routing_strategy?: RoutingStrategy;
}

/** What the API shows of a provider: never the key, only whether one is set. */
export interface ProviderView {
  id: string;
  name: string;
  type: ProviderType;
  base_url: string;
  api_version: string | null;
  node_id: string | null;
  has_api_key: boolean;
  created_at: string;
  updated_at: string;
}

export interface ModelView extends ModelRow {
  deployments: Omit<DeploymentRow, 'model_id' | 'position'>[];
}

// Public endpoints of the well-known providers; azure and openai-compatible have no default.
const DEFAULT_BASE_URL: Partial<Record<ProviderType, string>> = {
  openai: 'https://api.openai.com/v1',
  gemini: 'https://generativelanguage.googleapis.com',
  anthropic: 'https://api.anthropic.com',
  glm: 'https://open.bigmodel.cn/api/paas/v4',
};

export interface Catalog {
  createProvider(input: NewProvider): ProviderView;
  listProviders(): ProviderView[];
  getProvider(id: string): ProviderView;
  updateProvider(id: string, patch: ProviderPatch): { before: ProviderView; after: ProviderView };
  deleteProvider(id: string): void;
  createModel(input: NewModel): ModelView;
  listModels(): ModelView[];
  /** By id or by public name. */
  getModel(idOrName: string): ModelView;
  updateModel(idOrName: string, patch: ModelPatch): { before: ModelView; after: ModelView };
  deleteModel(idOrName: string): void;
  /** Hot path: the public model by name, with its deployments and decrypted provider keys. */
  resolve(name: string): Model | undefined;
  all(): Model[];
}

function normaliseBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AppError('validation_failed', 'base_url is not a URL', { details: { param: 'base_url' } });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AppError('validation_failed', 'base_url must be http or https', { details: { param: 'base_url' } });
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new AppError('validation_failed', 'base_url must not carry credentials, a query or a fragment', { details: { param: 'base_url' } });
  }
  return url.toString().replace(/\/+$/, '');
}

export interface CatalogHooks {
  /** Deployments removed, or whose provider's address or credentials changed: their cooldown no longer applies. */
  forget?(deploymentIds: string[]): void;
}

const sealKey = (secretBox: SecretBox, id: string, key: string) => secretBox.seal(key, `provider:${id}`);

export function createCatalog(db: Db, secretBox: SecretBox, hooks: CatalogHooks = {}): Catalog {
  const store = createCatalogStore(db);
  let table: Map<string, Model> | null = null;

  const providerView = (p: ProviderRow): ProviderView => ({
    id: p.id,
    name: p.name,
    type: p.type,
    base_url: p.base_url,
    api_version: p.api_version,
    node_id: p.node_id,
    has_api_key: p.api_key_sealed !== null,
    created_at: p.created_at,
    updated_at: p.updated_at,
  });

  const modelView = (m: ModelRow, deployments: DeploymentRow[]): ModelView => ({
    id: m.id,
    name: m.name,
    input_price_per_mtok: m.input_price_per_mtok,
    output_price_per_mtok: m.output_price_per_mtok,
    cached_input_price_per_mtok: m.cached_input_price_per_mtok,
    audio_input_price_per_minute: m.audio_input_price_per_minute,
    tts_price_per_mchar: m.tts_price_per_mchar,
    cache_ttl_seconds: m.cache_ttl_seconds,
    routing_strategy: m.routing_strategy,
    created_at: m.created_at,
    updated_at: m.updated_at,
    deployments: deployments.map(({ model_id: _m, position: _p, ...d }) => d),
  });

  const build = (): Map<string, Model> => {
    const providers = new Map<string, Provider>();
    for (const p of store.listProviders()) {
      providers.set(p.id, {
        id: p.id,
        name: p.name,
        type: p.type,
        baseUrl: p.base_url,
        apiKey: p.api_key_sealed ? secretBox.open(p.api_key_sealed, `provider:${p.id}`) : null,
        apiVersion: p.api_version,
        nodeId: p.node_id,
      });
    }
    const byModel = new Map<string, Deployment[]>();
    for (const d of store.listDeployments()) {
      const list = byModel.get(d.model_id) ?? [];
      list.push({ id: d.id, provider: providers.get(d.provider_id)!, upstreamModel: d.upstream_model, weight: d.weight, priority: d.priority });
      byModel.set(d.model_id, list);
    }
    const out = new Map<string, Model>();
    for (const m of store.listModels()) {
      out.set(m.name, {
        id: m.id,
        name: m.name,
        inputPricePerMtok: m.input_price_per_mtok,
        outputPricePerMtok: m.output_price_per_mtok,
        cachedInputPricePerMtok: m.cached_input_price_per_mtok,
        audioInputPricePerMinute: m.audio_input_price_per_minute,
        ttsPricePerMchar: m.tts_price_per_mchar,
        cacheTtlSeconds: m.cache_ttl_seconds,
        routing: m.routing_strategy,
        created: Math.floor(Date.parse(m.created_at) / 1000),
        deployments: byModel.get(m.id) ?? [],
      });
    }
    return out;
  };
  const invalidate = (gone: string[] = []) => {
    table = null;
    if (gone.length) hooks.forget?.(gone);
  };
  const findModel = (idOrName: string): ModelRow => {
    const m = store.getModel(idOrName) ?? store.getModelByName(idOrName);
    if (!m) throw notFound('model');
    return m;
  };
  /** Checks every provider id; keeps the id of an existing deployment with the same provider and upstream model. */
  const deploymentRows = (modelId: string, input: NewDeployment[], existing: DeploymentRow[]): DeploymentRow[] => {
    const reusable = [...existing];
    return input.map((d, i): DeploymentRow => {
      if (!store.getProvider(d.provider_id)) {
        throw new AppError('validation_failed', `deployments[${i}].provider_id names no provider`, { details: { param: `deployments.${i}.provider_id` } });
      }
      const same = reusable.findIndex((e) => e.provider_id === d.provider_id && e.upstream_model === d.upstream_model);
      const id = same >= 0 ? reusable.splice(same, 1)[0]!.id : randomUUID();
      return { id, model_id: modelId, provider_id: d.provider_id, upstream_model: d.upstream_model, weight: d.weight ?? 1, priority: d.priority ?? 0, position: i };
    });
  };
  const requireAzureVersion = (type: ProviderType, apiVersion: string | null | undefined) => {
    if (type === 'azure' && !apiVersion) {
      throw new AppError('validation_failed', 'api_version is required for azure providers (e.g. 2024-10-21, or v1)', { details: { param: 'api_version' } });
    }
  };

  return {
    createProvider(input) {
      const base = input.base_url ?? DEFAULT_BASE_URL[input.type];
      if (!base) throw new AppError('validation_failed', `base_url is required for provider type ${input.type}`, { details: { param: 'base_url' } });
      requireAzureVersion(input.type, input.api_version);
      if (store.getProviderByName(input.name)) throw conflict(`provider "${input.name}" already exists`);
      const id = randomUUID();
      const now = new Date().toISOString();
      const row: ProviderRow = {
        id,
        name: input.name,
        type: input.type,
        base_url: normaliseBaseUrl(base),
        api_key_sealed: input.api_key ? sealKey(secretBox, id, input.api_key) : null,
        api_version: input.api_version ?? null,
        node_id: input.node_id ?? null,
        created_at: now,
        updated_at: now,
      };
      store.insertProvider(row);
      invalidate();
      return providerView(row);
    },
    listProviders: () => store.listProviders().map(providerView),
    getProvider(id) {
      const p = store.getProvider(id);
      if (!p) throw notFound('provider');
      return providerView(p);
    },
    updateProvider(id, patch) {
      const row = store.getProvider(id);
      if (!row) throw notFound('provider');
      if (patch.name !== undefined) {
        const other = store.getProviderByName(patch.name);
        if (other && other.id !== id) throw conflict(`provider "${patch.name}" already exists`);
      }
      const next: ProviderRow = {
        ...row,
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.base_url !== undefined ? { base_url: normaliseBaseUrl(patch.base_url) } : {}),
        ...(patch.api_key !== undefined ? { api_key_sealed: patch.api_key === null ? null : sealKey(secretBox, id, patch.api_key) } : {}),
        ...(patch.api_version !== undefined ? { api_version: patch.api_version } : {}),
        ...(patch.node_id !== undefined ? { node_id: patch.node_id } : {}),
        updated_at: new Date().toISOString(),
      };
      requireAzureVersion(next.type, next.api_version);
      store.updateProvider(next);
      // A provider that failed may work at its new address or with its new key: try it at once.
      const reached = patch.base_url !== undefined || patch.api_key !== undefined || patch.api_version !== undefined || patch.node_id !== undefined;
      invalidate(reached ? store.providerDeployments(id).map((d) => d.id) : []);
      return { before: providerView(row), after: providerView(next) };
    },
    deleteProvider(id) {
      if (!store.getProvider(id)) throw notFound('provider');
      if (store.providerInUse(id)) throw conflict('provider is used by a model deployment; delete or change the model first');
      store.deleteProvider(id);
      invalidate();
    },

    createModel(input) {
      if (store.getModelByName(input.name)) throw conflict(`model "${input.name}" already exists`);
      const id = randomUUID();
      const now = new Date().toISOString();
      const row: ModelRow = {
        id,
        name: input.name,
        input_price_per_mtok: input.input_price_per_mtok ?? 0,
        output_price_per_mtok: input.output_price_per_mtok ?? 0,
        cached_input_price_per_mtok: input.cached_input_price_per_mtok ?? null,
        audio_input_price_per_minute: input.audio_input_price_per_minute ?? null,
        tts_price_per_mchar: input.tts_price_per_mchar ?? null,
        cache_ttl_seconds: input.cache_ttl_seconds ?? null,
        routing_strategy: input.routing_strategy ?? 'weighted',
        created_at: now,
        updated_at: now,
      };
      const deployments = deploymentRows(id, input.deployments, []);
      store.insertModel(row, deployments);
      invalidate();
      return modelView(row, deployments);
    },
    listModels() {
      const deployments = store.listDeployments();
      return store.listModels().map((m) => modelView(m, deployments.filter((d) => d.model_id === m.id)));
    },
    getModel(idOrName) {
      const m = findModel(idOrName);
      return modelView(m, store.modelDeployments(m.id));
    },
    updateModel(idOrName, patch) {
      const row = findModel(idOrName);
      const existing = store.modelDeployments(row.id);
      const deployments = patch.deployments ? deploymentRows(row.id, patch.deployments, existing) : null;
      const next: ModelRow = {
        ...row,
        ...(patch.input_price_per_mtok !== undefined ? { input_price_per_mtok: patch.input_price_per_mtok } : {}),
        ...(patch.output_price_per_mtok !== undefined ? { output_price_per_mtok: patch.output_price_per_mtok } : {}),
        ...(patch.cached_input_price_per_mtok !== undefined ? { cached_input_price_per_mtok: patch.cached_input_price_per_mtok } : {}),
        ...(patch.audio_input_price_per_minute !== undefined ? { audio_input_price_per_minute: patch.audio_input_price_per_minute } : {}),
        ...(patch.tts_price_per_mchar !== undefined ? { tts_price_per_mchar: patch.tts_price_per_mchar } : {}),
        ...(patch.cache_ttl_seconds !== undefined ? { cache_ttl_seconds: patch.cache_ttl_seconds } : {}),
        ...(patch.routing_strategy !== undefined ? { routing_strategy: patch.routing_strategy } : {}),
        updated_at: new Date().toISOString(),
      };
      store.updateModel(next, deployments);
      const kept = new Set((deployments ?? existing).map((d) => d.id));
      invalidate(existing.filter((d) => !kept.has(d.id)).map((d) => d.id));
      return { before: modelView(row, existing), after: modelView(next, deployments ?? existing) };
    },
    deleteModel(idOrName) {
      const m = findModel(idOrName);
      const gone = store.modelDeployments(m.id).map((d) => d.id);
      store.deleteModel(m.id);
      invalidate(gone);
    },

    resolve(name) {
      table ??= build();
      return table.get(name);
    },
    all() {
      table ??= build();
      return [...table.values()];
    },
  };
}
