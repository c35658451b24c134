// SQL for providers, models and their deployments. The only module that touches these tables.
import type { Db } from '../../../core/db/db.ts';

export const PROVIDER_TYPES = ['openai', 'azure', 'gemini', 'glm', 'anthropic', 'openai-compatible'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];
/** How a model's deployments of one priority share its calls (engine/router.ts). */
export const ROUTING_STRATEGIES = ['weighted', 'least_busy', 'latency'] as const;
export type RoutingStrategy = (typeof ROUTING_STRATEGIES)[number];

export interface ProviderRow {
  id: string;
  name: string;
  type: ProviderType;
  base_url: string;
  api_key_sealed: string | null;
  api_version: string | null;
  node_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface ModelRow {
  id: string;
  name: string;
  input_price_per_mtok: number;
  output_price_per_mtok: number;
  cached_input_price_per_mtok: number | null;
  /** USD per minute of input audio (transcriptions, translations); null: not priced by length. */
  audio_input_price_per_minute: number | null;
  /** USD per million characters of speech input; null: not priced by characters. */
  tts_price_per_mchar: number | null;
  cache_ttl_seconds: number | null;
  routing_strategy: RoutingStrategy;
  created_at: string;
  updated_at: string;
}

export interface DeploymentRow {
  id: string;
  model_id: string;
  provider_id: string;
  upstream_model: string;
  weight: number;
  priority: number;
  position: number;
}

export interface CatalogStore {
  insertProvider(p: ProviderRow): void;
  listProviders(): ProviderRow[];
  getProvider(id: string): ProviderRow | undefined;
  getProviderByName(name: string): ProviderRow | undefined;
  deleteProvider(id: string): boolean;
  updateProvider(p: ProviderRow): void;
  providerInUse(id: string): boolean;
  insertModel(m: ModelRow, deployments: DeploymentRow[]): void;
  listModels(): ModelRow[];
  getModel(id: string): ModelRow | undefined;
  getModelByName(name: string): ModelRow | undefined;
  deleteModel(id: string): boolean;
  /** Updates the model's row and, when `deployments` is given, replaces its deployments; one transaction. */
  updateModel(m: ModelRow, deployments: DeploymentRow[] | null): void;
  listDeployments(): DeploymentRow[];
  modelDeployments(modelId: string): DeploymentRow[];
  providerDeployments(providerId: string): DeploymentRow[];
}

export function createCatalogStore(db: Db): CatalogStore {
  const insertProvider = db.prepare(`INSERT INTO gateway_providers
    (id, name, type, base_url, api_key_sealed, api_version, node_id, created_at, updated_at)
    VALUES (@id, @name, @type, @base_url, @api_key_sealed, @api_version, @node_id, @created_at, @updated_at)`);
  const listProviders = db.prepare('SELECT * FROM gateway_providers ORDER BY created_at, id');
  const getProvider = db.prepare('SELECT * FROM gateway_providers WHERE id = ?');
  const getProviderByName = db.prepare('SELECT * FROM gateway_providers WHERE name = ?');
  const deleteProvider = db.prepare('DELETE FROM gateway_providers WHERE id = ?');
  const updateProvider = db.prepare(`UPDATE gateway_providers SET name = @name, base_url = @base_url,
    api_key_sealed = @api_key_sealed, api_version = @api_version, node_id = @node_id, updated_at = @updated_at WHERE id = @id`);
  const providerInUse = db.prepare('SELECT 1 FROM gateway_deployments WHERE provider_id = ? LIMIT 1');
  const insertModel = db.prepare(`INSERT INTO gateway_models
    (id, name, input_price_per_mtok, output_price_per_mtok, cached_input_price_per_mtok, audio_input_price_per_minute, tts_price_per_mchar, cache_ttl_seconds, routing_strategy, created_at, updated_at)
    VALUES (@id, @name, @input_price_per_mtok, @output_price_per_mtok, @cached_input_price_per_mtok, @audio_input_price_per_minute, @tts_price_per_mchar, @cache_ttl_seconds, @routing_strategy, @created_at, @updated_at)`);
  const updateModel = db.prepare(`UPDATE gateway_models SET input_price_per_mtok = @input_price_per_mtok,
    output_price_per_mtok = @output_price_per_mtok, cached_input_price_per_mtok = @cached_input_price_per_mtok,
    audio_input_price_per_minute = @audio_input_price_per_minute, tts_price_per_mchar = @tts_price_per_mchar, cache_ttl_seconds = @cache_ttl_seconds, routing_strategy = @routing_strategy, updated_at = @updated_at WHERE id = @id`);
  const deleteDeployments = db.prepare('DELETE FROM gateway_deployments WHERE model_id = ?');
  const modelDeployments = db.prepare('SELECT * FROM gateway_deployments WHERE model_id = ? ORDER BY position');
  const providerDeployments = db.prepare('SELECT * FROM gateway_deployments WHERE provider_id = ?');
  const insertDeployment = db.prepare(`INSERT INTO gateway_deployments
    (id, model_id, provider_id, upstream_model, weight, priority, position)
    VALUES (@id, @model_id, @provider_id, @upstream_model, @weight, @priority, @position)`);
  const listModels = db.prepare('SELECT * FROM gateway_models ORDER BY name');
  const getModel = db.prepare('SELECT * FROM gateway_models WHERE id = ?');
  const getModelByName = db.prepare('SELECT * FROM gateway_models WHERE name = ?');
  const deleteModel = db.prepare('DELETE FROM gateway_models WHERE id = ?');
  const listDeployments = db.prepare('SELECT * FROM gateway_deployments ORDER BY model_id, position');

  const insertModelTx = db.transaction((m: ModelRow, deployments: DeploymentRow[]) => {
    insertModel.run(m);
    for (const d of deployments) insertDeployment.run(d);
  });

  const updateModelTx = db.transaction((m: ModelRow, deployments: DeploymentRow[] | null) => {
    updateModel.run(m);
    if (!deployments) return;
    deleteDeployments.run(m.id);
    for (const d of deployments) insertDeployment.run(d);
  });

  return {
    insertProvider: (p) => void insertProvider.run(p),
    listProviders: () => listProviders.all() as ProviderRow[],
    getProvider: (id) => getProvider.get(id) as ProviderRow | undefined,
    getProviderByName: (name) => getProviderByName.get(name) as ProviderRow | undefined,
    deleteProvider: (id) => deleteProvider.run(id).changes > 0,
    updateProvider: (p) => void updateProvider.run(p),
    providerInUse: (id) => providerInUse.get(id) !== undefined,
    insertModel: (m, deployments) => insertModelTx(m, deployments),
    listModels: () => listModels.all() as ModelRow[],
    getModel: (id) => getModel.get(id) as ModelRow | undefined,
    getModelByName: (name) => getModelByName.get(name) as ModelRow | undefined,
    deleteModel: (id) => deleteModel.run(id).changes > 0,
    updateModel: (m, deployments) => updateModelTx(m, deployments),
    listDeployments: () => listDeployments.all() as DeploymentRow[],
    modelDeployments: (modelId) => modelDeployments.all(modelId) as DeploymentRow[],
    providerDeployments: (providerId) => providerDeployments.all(providerId) as DeploymentRow[],
  };
}
