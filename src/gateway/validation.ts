/**
 * Fastify's validation of a JSON body, reachable outside a Fastify route: the same compiler
 * (@fastify/ajv-compiler, with the gateway's ajv options), the same JSON parser options
 * (secure-json-parse, prototype poisoning refused) and the same message format, so that the hot
 * route (hot-route.ts) refuses a body exactly as the Fastify route does.
 */
import AjvCompiler from '@fastify/ajv-compiler';
import { errorCodes, type FastifySchemaValidationError } from 'fastify';
import secureJsonParse from 'secure-json-parse';

/** The largest request body the gateway reads (Fastify's bodyLimit; larger is 413). */
export const BODY_LIMIT_BYTES = 16 * 1024;

/** The gateway's ajv options (buildGateway gives Fastify the same): strict JSON, no coercion. */
export const AJV_CUSTOM_OPTIONS = { coerceTypes: false } as const;

export interface BodyValidator {
  (data: unknown): boolean;
  errors?: FastifySchemaValidationError[] | null;
}

/** Compiles a route's body schema as Fastify does; give the result to the route's `validatorCompiler` too. */
export function compileBodyValidator(schema: object, url: string): BodyValidator {
  const compile = AjvCompiler()({}, { customOptions: AJV_CUSTOM_OPTIONS });
  return compile({ schema, method: 'POST', url, httpPart: 'body' }) as BodyValidator;
}

/** A failed validation as Fastify reports it (its default schemaErrorFormatter, `body` as the data). */
export function validationError(validator: BodyValidator): Error & { validation: unknown } {
  const text = (validator.errors ?? []).map((e) => `body${e.instancePath || ''} ${e.message ?? ''}`).join(', ');
  return Object.assign(new Error(text), { validation: validator.errors, statusCode: 400 });
}

/** Fastify's default JSON body parser: an empty or malformed body is Fastify's own error. */
export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY();
  try {
    return secureJsonParse.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch {
    throw new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY();
  }
}
