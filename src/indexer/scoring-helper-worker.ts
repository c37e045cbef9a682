/** The helper thread of scoring-helper.ts: waits for a share of rows to score, scores it, says it is done. */
import { parentPort, workerData } from "node:worker_threads";
import { scoreRowsInto } from "./row-scores.js";
import { Control, type HelperData, HelperState, exchangeViews, partsFrom } from "./scoring-helper.js";

const data = workerData as HelperData;
const views = exchangeViews(data);
const { control } = views;
parentPort?.postMessage("ready");
for (;;) {
  // Sleeps until the caller stores `work` (or `stop`) and notifies; other states are its own or the last answer.
  let state = Atomics.load(control, Control.state);
  while (state !== HelperState.work && state !== HelperState.stop) {
    Atomics.wait(control, Control.state, state);
    state = Atomics.load(control, Control.state);
  }
  if (state === HelperState.stop) break;
  try {
    const file = data.files[control[Control.file]];
    const parts = partsFrom(views, file, control[Control.parts]);
    scoreRowsInto(file, parts, control[Control.hasRows] ? views.rows : undefined, views.out, control[Control.from], control[Control.to]);
    Atomics.store(control, Control.state, HelperState.done);
  } catch {
    Atomics.store(control, Control.state, HelperState.failed);
  }
  Atomics.notify(control, Control.state);
}
