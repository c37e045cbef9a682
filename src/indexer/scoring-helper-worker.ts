/** The helper thread of scoring-helper.ts: waits for rows to score, takes them with the caller until none are left, says it is done. */
import { parentPort, workerData } from "node:worker_threads";
import { Control, type HelperData, HelperState, exchangeViews, partsFrom, scoreChunks } from "./scoring-helper.js";

const data = workerData as HelperData;
const views = exchangeViews(data);
const { control } = views;
parentPort?.postMessage("ready");
for (;;) {
  // Sleeps until the caller stores `work` (or `stop`) and notifies; other states are its own answers or a call the caller took back.
  let state = Atomics.load(control, Control.state);
  while (state !== HelperState.work && state !== HelperState.stop) {
    Atomics.wait(control, Control.state, state);
    state = Atomics.load(control, Control.state);
  }
  if (state === HelperState.stop) break;
  // The caller may have finished every row and called it off meanwhile.
  if (Atomics.compareExchange(control, Control.state, HelperState.work, HelperState.busy) !== HelperState.work) continue;
  try {
    const file = data.files[control[Control.file]];
    scoreChunks(views, file, partsFrom(views, file, control[Control.parts]));
    Atomics.store(control, Control.state, HelperState.done);
  } catch {
    Atomics.store(control, Control.state, HelperState.failed);
  }
  Atomics.notify(control, Control.state);
}
