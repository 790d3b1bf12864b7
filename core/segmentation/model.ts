/**
 * The segmentation model artifact: the versioned JSON document stored in GCS
 * and registered in marts.segment_models. Batch (SQL) and real-time
 * (TypeScript) assignment both read only this, which is what lets them agree.
 */
import { z } from 'zod';
import { CohesionSchema } from './cohesion.js';
import { HierarchySchema } from './hierarchy.js';
import { KSelectionSchema } from './kselect.js';
import { SegmentSchema } from './labels.js';
import { FeatureSpecListSchema, PreparationSchema, dimensionColumn } from './prepare.js';
import { parseOrThrow } from './validate.js';

/** Model versions appear in workflow ids, search attributes and object names. */
export const MODEL_VERSION = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** How a model's centroids were found: k-means, or the means of a cut Ward tree (hierarchical.ts). */
export const SegmentAlgorithmSchema = z.enum(['kmeans', 'hierarchical']);
export type SegmentAlgorithm = z.infer<typeof SegmentAlgorithmSchema>;

export const SegmentModelSchema = z
  .object({
    version: z.string().regex(MODEL_VERSION, 'expected a model version of letters, digits and . _ : - (at most 128)'),
    created_at: z.iso.datetime({ offset: true }),
    /** The feature spec as configured. */
    features: FeatureSpecListSchema,
    /** Imputation fills and scaler bounds fitted on the training rows. */
    preparation: PreparationSchema,
    /** Centroids in prepared space; index i belongs to segments[i]. */
    centroids: z.array(z.array(z.number())).min(1),
    segments: z.array(SegmentSchema).min(1),
    k_selection: KSelectionSchema,
    metrics: z.object({
      /** Sum of squared distances over the training rows. */
      inertia: z.number().nonnegative(),
      /** Mean silhouette on the silhouette sample. */
      silhouette: z.number().min(-1).max(1),
    }),
    /** Cohesion and separation per segment (by centroid index) and for the model, as trained (absent in older models). */
    cohesion: CohesionSchema.optional(),
    /** Nested segments: the Ward tree over the segments and the parent level (hierarchy.ts; absent in older models). */
    hierarchy: HierarchySchema.optional(),
    training: z.object({
      /** Absent in models trained before the choice existed (all k-means). */
      algorithm: SegmentAlgorithmSchema.optional(),
      sample_size: z.number().int().positive(),
      seed: z.number().int().nonnegative(),
      n_init: z.number().int().positive(),
      iterations: z.number().int().nonnegative(),
      converged: z.boolean(),
    }),
  })
  .superRefine((m, ctx) => {
    const names = m.features.map((f) => f.name);
    // A categorical feature has several dimensions in a row, all reading its column.
    const prepNames = m.preparation.features.map(dimensionColumn).filter((c, j, all) => j === 0 || all[j - 1] !== c);
    if (names.join(',') !== prepNames.join(',')) {
      ctx.addIssue({
        code: 'custom',
        path: ['preparation'],
        message: `preparation features [${prepNames}] differ from features [${names}]`,
      });
    }
    const dim = m.preparation.features.length;
    m.centroids.forEach((c, i) => {
      if (c.length !== dim) ctx.addIssue({ code: 'custom', path: ['centroids', i], message: `expected ${dim} values, got ${c.length}` });
    });
    if (m.segments.length !== m.centroids.length) {
      ctx.addIssue({ code: 'custom', path: ['segments'], message: `${m.segments.length} segments for ${m.centroids.length} centroids` });
    }
    const ids = new Set(m.segments.map((s) => s.id));
    if (ids.size !== m.segments.length) ctx.addIssue({ code: 'custom', path: ['segments'], message: 'segment ids must be unique' });
    const labels = new Set(m.segments.map((s) => s.label));
    if (labels.size !== m.segments.length) ctx.addIssue({ code: 'custom', path: ['segments'], message: 'segment labels must be unique' });
    if (m.hierarchy) {
      const members = m.hierarchy.parents.flatMap((p) => p.members).sort((a, b) => a - b);
      if (members.join(',') !== [...ids].sort((a, b) => a - b).join(',')) {
        ctx.addIssue({
          code: 'custom',
          path: ['hierarchy', 'parents'],
          message: `parents hold segments [${members}], expected each of [${[...ids]}] once`,
        });
      }
    }
    if (m.k_selection.chosen_k !== m.centroids.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['k_selection'],
        message: `chosen_k ${m.k_selection.chosen_k} but ${m.centroids.length} centroids`,
      });
    }
  });
export type SegmentModel = z.infer<typeof SegmentModelSchema>;

/** Parses an artifact (e.g. read from GCS), with every problem named in one error. */
export function parseSegmentModel(json: unknown): SegmentModel {
  return parseOrThrow(SegmentModelSchema, json, 'segmentation model artifact');
}

/** `v20261126T020000Z` from an instant: the model version of the run whose interval ends then. */
export function modelVersionFor(instant: string): string {
  const d = new Date(instant);
  if (Number.isNaN(d.getTime())) throw new Error(`modelVersionFor: expected an RFC 3339 instant, got ${JSON.stringify(instant)}`);
  return `v${d
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '')}`;
}
