/** The ids of the production DAGs: one name in dags/, workflow ids, search attributes, schedules and alerts. */
export const HOURLY_PIPELINE_DAG = 'hourly_pipeline';
export const NIGHTLY_SEGMENTATION_DAG = 'nightly_segmentation';
