/** The pure segmentation core: preparation, k-means, k selection, labels, assignment (TS and SQL), stability. */
export * from './agreement.js';
export * from './assign.js';
export * from './features.js';
export * from './hierarchy.js';
export * from './bootstrap.js';
export * from './cohesion.js';
export * from './cohesion-gate.js';
export * from './job.js';
export * from './kselect.js';
export * from './labels.js';
export * from './model.js';
export * from './prepare.js';
export * from './random.js';
export * from './sql.js';
export * from './stability.js';
export * from './train.js';
export * from './validate.js';
