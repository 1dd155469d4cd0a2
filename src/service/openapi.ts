// /v1/openapi.json: the OpenAPI 3.1 description, generated from the routes' own JSON schemas (the ones
// fastify validates and serializes with), so it cannot drift from what the service does.
import type { FastifyInstance, RouteOptions } from 'fastify';
import { openApiSchema } from './schemas';

type Schema = Record<string, unknown>;

interface CollectedRoute {
  method: string;
  url: string;
  schema: Schema;
  auth: boolean;
  requestBody?: Schema;
}

const PARAMETER_SOURCES: [key: string, location: string][] = [
  ['params', 'path'],
  ['querystring', 'query'],
  ['headers', 'header'],
];

function parameters(schema: Schema): Schema[] {
  const out: Schema[] = [];
  for (const [key, location] of PARAMETER_SOURCES) {
    const object = schema[key] as { properties?: Record<string, Schema>; required?: string[] } | undefined;
    for (const [name, property] of Object.entries(object?.properties ?? {})) {
      const { description, ...rest } = property;
      out.push({
        name,
        in: location,
        required: location === 'path' || (object?.required ?? []).includes(name),
        ...(description ? { description } : {}),
        schema: rest,
      });
    }
  }
  return out;
}

function responses(schema: Schema): Schema {
  const out: Schema = {};
  for (const [status, response] of Object.entries((schema.response ?? {}) as Record<string, Schema>)) {
    const { description, content, ...rest } = response;
    if (status === '204') {
      // No content: nothing but the description.
      out[status] = { description: (description as string | undefined) ?? 'success' };
      continue;
    }
    out[status.toUpperCase()] = {
      description: (description as string | undefined) ?? (status.startsWith('2') ? 'success' : 'error'),
      content: content ?? { 'application/json': { schema: rest } },
    };
  }
  return out;
}

function operation(route: CollectedRoute): Schema {
  const { schema } = route;
  const body = schema.body ? { required: true, content: { 'application/json': { schema: schema.body } } } : route.requestBody;
  return {
    operationId: schema.operationId,
    summary: schema.summary,
    ...(route.auth ? { security: [{ bearerToken: [] }] } : {}),
    parameters: parameters(schema),
    ...(body ? { requestBody: body } : {}),
    responses: responses(schema),
  };
}

export function buildOpenApi(routes: readonly CollectedRoute[], version: string): Schema {
  const paths: Record<string, Record<string, Schema>> = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'cloacina-sign signing service',
      version,
      description:
        'Signs package digests with database keys (the key-encryption key never leaves this service) and registers uploaded packages after verifying them. Authenticate with `Authorization: Bearer <token>` (see `cloacina-sign tokens create`).',
    },
    components: { securitySchemes: { bearerToken: { type: 'http', scheme: 'bearer', description: 'an API token (cst_...)' } } },
    paths,
  };
}

/** Collects every route registered after this call and serves their description at /v1/openapi.json. */
export function openApiRoute(app: FastifyInstance, version: string): void {
  const routes: CollectedRoute[] = [];
  app.addHook('onRoute', (options: RouteOptions) => {
    if (!options.schema) return;
    const methods = Array.isArray(options.method) ? options.method : [options.method];
    for (const method of methods) {
      if (method === 'HEAD') continue;
      const config = (options.config ?? {}) as { auth?: boolean; openapi?: { requestBody?: Schema } };
      routes.push({ method, url: options.url, schema: options.schema as Schema, auth: config.auth === true, requestBody: config.openapi?.requestBody });
    }
  });
  let document: Schema | undefined;
  app.get('/v1/openapi.json', { schema: openApiSchema }, async () => {
    document ??= buildOpenApi(routes, version);
    return document;
  });
}
