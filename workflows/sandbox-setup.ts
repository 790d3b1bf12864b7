/**
 * Loaded into the workflow sandbox once, before any workflow runs (worker.ts lists it in
 * `preloadModules`; the SDK freezes the sandbox's built-ins right after).
 *
 * For every promise a workflow creates, the Temporal SDK records the stack it was created at,
 * for the stack-trace query behind the Temporal UI's "Stack Trace" tab. That costs per frame
 * (capture, source-map lookup, formatting), and a reclassifyCustomer step creates dozens of
 * promises, so V8's default depth makes it a large share of the workflow thread's work under
 * real-time load. Six frames keep the ones the query shows first (where each pending promise
 * was created and the workflow code that awaits it) and the top of any workflow error's stack.
 */
export const WORKFLOW_STACK_FRAMES = 6;

Error.stackTraceLimit = WORKFLOW_STACK_FRAMES;
