// Providers and public models, and the in-memory routing table built from them. Every request reads
// the table; every admin write rebuilds it, so the cache is exact and the hot path touches no SQL.
import { randomUUID } from 'node:crypto';
import type { SecretBox } from '../../../core/crypto/secret-box.ts';
import type { Db } from '../../../core/db/db.ts';
import { AppError, conflict, notFound } from '../../../core/errors/errors.ts';
import { createCatalogStore, type DeploymentRow, type ModelRow, type ProviderRow, type ProviderType } from './catalog-store.ts';

export type { ProviderType };

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

export interface NewModel {
  name: string;
  deployments: { provider_id: string; upstream_model: string; weight?: number; priority?: number }[];
  input_price_per_mtok?: number;
  output_price_per_mtok?: number;
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
}

export interface ModelView extends Omit<ModelRow, 'updated_at'> {
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
  deleteProvider(id: string): void;
  createModel(input: NewModel): ModelView;
  listModels(): ModelView[];
  getModel(id: string): ModelView;
  deleteModel(id: string): void;
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

export function createCatalog(db: Db, secretBox: SecretBox): Catalog {
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
  });

  const modelView = (m: ModelRow, deployments: DeploymentRow[]): ModelView => ({
    id: m.id,
    name: m.name,
    input_price_per_mtok: m.input_price_per_mtok,
    output_price_per_mtok: m.output_price_per_mtok,
    created_at: m.created_at,
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
        created: Math.floor(Date.parse(m.created_at) / 1000),
        deployments: byModel.get(m.id) ?? [],
      });
    }
    return out;
  };
  const invalidate = () => {
    table = null;
  };

  return {
    createProvider(input) {
      const base = input.base_url ?? DEFAULT_BASE_URL[input.type];
      if (!base) throw new AppError('validation_failed', `base_url is required for provider type ${input.type}`, { details: { param: 'base_url' } });
      if (input.type === 'azure' && !input.api_version) {
        throw new AppError('validation_failed', 'api_version is required for azure providers (e.g. 2024-10-21, or v1)', { details: { param: 'api_version' } });
      }
      if (store.getProviderByName(input.name)) throw conflict(`provider "${input.name}" already exists`);
      const id = randomUUID();
      const now = new Date().toISOString();
      const row: ProviderRow = {
        id,
        name: input.name,
        type: input.type,
        base_url: normaliseBaseUrl(base),
        api_key_sealed: input.api_key ? secretBox.seal(input.api_key, `provider:${id}`) : null,
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
        created_at: now,
        updated_at: now,
      };
      const deployments = input.deployments.map((d, i): DeploymentRow => {
        if (!store.getProvider(d.provider_id)) {
          throw new AppError('validation_failed', `deployments[${i}].provider_id names no provider`, { details: { param: `deployments.${i}.provider_id` } });
        }
        return { id: randomUUID(), model_id: id, provider_id: d.provider_id, upstream_model: d.upstream_model, weight: d.weight ?? 1, priority: d.priority ?? 0, position: i };
      });
      store.insertModel(row, deployments);
      invalidate();
      return modelView(row, deployments);
    },
    listModels() {
      const deployments = store.listDeployments();
      return store.listModels().map((m) => modelView(m, deployments.filter((d) => d.model_id === m.id)));
    },
    getModel(id) {
      const m = store.getModel(id);
      if (!m) throw notFound('model');
      return modelView(m, store.listDeployments().filter((d) => d.model_id === id));
    },
    deleteModel(id) {
      if (!store.deleteModel(id)) throw notFound('model');
      invalidate();
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
