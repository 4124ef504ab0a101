// Worker thread entry: answers the pool's TaskRequests with worker-tasks.ts on this thread's codec.
import { parentPort } from 'node:worker_threads';
import { PbsError } from '../errors.js';
import { getCodec } from './index.js';
import { toWireError, transferable, type TaskRequest, type WorkerMessage } from './worker-protocol.js';
import { runTask, type TaskName } from './worker-tasks.js';

const port = parentPort;
if (!port) throw new PbsError('EINVAL', 'codec worker.js must run in a worker thread (see worker-pool.ts)');
const codec = getCodec();

port.on('message', (req: TaskRequest) => {
  let reply: WorkerMessage;
  let transfer: ArrayBuffer[] = [];
  try {
    const out = transferable(runTask(codec, req.task as TaskName, req.args as never));
    reply = { id: req.id, ok: true, result: out.value };
    transfer = out.transfer;
  } catch (e) {
    reply = { id: req.id, ok: false, error: toWireError(e, req.task) };
  }
  port.postMessage(reply, transfer);
});
port.postMessage({ ready: true } satisfies WorkerMessage);
