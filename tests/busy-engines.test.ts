/** The count of busy engines that decides whether an engine lends a core to its scoring helper. */
import { describe, expect, it } from "vitest";
import { busyEngines, countedHandlers, spareCore } from "../src/engine/busy-engines.js";

describe("busy engines", () => {
  it("count a handler while it runs, failed or not, and leave a core spare while fewer engines than cores are busy", async () => {
    const busy = busyEngines(2);
    const seen: number[] = [];
    const spare: boolean[] = [];
    let release: () => void = () => {};
    const handlers = countedHandlers(
      {
        hold: () => new Promise<void>((resolve) => (release = resolve)),
        look: async () => {
          seen.push(Atomics.load(busy.counter, 0));
          spare.push(spareCore(busy));
        },
        fail: async () => {
          throw new Error("boom");
        },
      },
      busy,
    );
    await handlers.look(null);
    const held = handlers.hold(null);
    await handlers.look(null);
    await expect(handlers.fail(null)).rejects.toThrow("boom");
    release();
    await held;
    expect(Atomics.load(busy.counter, 0)).toBe(0);
    // Alone: itself; beside the held one: two engines on two cores.
    expect(seen).toEqual([1, 2]);
    expect(spare).toEqual([true, false]);
  });

  it("are shared by the threads that get the counter", () => {
    const busy = busyEngines(4);
    const clone = structuredClone(busy);
    Atomics.add(clone.counter, 0, 3);
    expect(spareCore(busy)).toBe(true);
    Atomics.add(clone.counter, 0, 1);
    expect(spareCore(busy)).toBe(false);
  });
});
