/** Entry of the restart helper thread (see restart-thread.ts). */
import { workerData, type MessagePort } from 'node:worker_threads';
import { serveRestarts } from './restart-thread.js';

const { port, state } = workerData as { port: MessagePort; state: Int32Array };
serveRestarts(port, state);
