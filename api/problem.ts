/**
 * Error answers of the API: one shape ({statusCode, error, message}) for every 4xx and 5xx.
 */
import type { FastifyReply } from 'fastify';

export function problem(reply: FastifyReply, statusCode: number, error: string, message: string) {
  return reply.code(statusCode).send({ statusCode, error, message });
}

/** The error shape as a JSON schema, for the OpenAPI document. */
export const PROBLEM_SCHEMA = {
  type: 'object',
  required: ['statusCode', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
  },
} as const;
