/**
 * JSON schema pieces shared by the API's route files, and the shape of the bearer-token hook.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { MODEL_VERSION } from '../core/segmentation/index.js';
import { PROBLEM_SCHEMA } from './problem.js';

/** The bearer-token check (api/server.ts), run as each protected route's preValidation hook. */
export type Authenticate = (request: FastifyRequest, reply: FastifyReply, done: () => void) => void;

export const VERSION_SCHEMA = {
  type: 'string',
  maxLength: 128,
  pattern: MODEL_VERSION.source,
  description: 'a model version such as v20261126T000000Z',
} as const;

export const errors = { 400: PROBLEM_SCHEMA, 401: PROBLEM_SCHEMA, 404: PROBLEM_SCHEMA, 429: PROBLEM_SCHEMA } as const;
export const security = [{ bearerAuth: [] }];
export const nullableNumber = { type: ['number', 'null'] } as const;
export const nullableString = { type: ['string', 'null'] } as const;
