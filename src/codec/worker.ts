// Worker thread entry: answers the pool's TaskRequests with worker-tasks.ts on this thread's codec.
import { parentPort } from 'node:worker_threads';
import { PbsError } from '../errors.js';
import { getCodec } from './index.js';
import type { TaskRequest, WorkerMessage } from './worker-protocol.js';
import { answer } from './worker-tasks.js';

const port = parentPort;
if (!port) throw new PbsError('EINVAL', 'codec worker.js must run in a worker thread (see worker-pool.ts)');
const codec = getCodec();

port.on('message', (req: TaskRequest) => {
  const { reply, transfer } = answer(codec, req);
  port.postMessage(reply, transfer);
});
port.postMessage({ ready: true } satisfies WorkerMessage);
